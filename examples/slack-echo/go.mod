module example.com/slack-echo

go 1.22
