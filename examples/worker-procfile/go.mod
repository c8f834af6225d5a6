module example.com/worker-procfile

go 1.22
