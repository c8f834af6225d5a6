package smtp

import (
	"fmt"
	"strings"
	"testing"

	"noops/internal/forensics/flow"
)

// exchange is a client command (or raw client bytes) and the server's
// reply lines.
type exchange struct {
	client  string
	replies []string
}

func conn(ex []exchange) *flow.Conn {
	var c, s strings.Builder
	for _, e := range ex {
		c.WriteString(e.client)
		for _, r := range e.replies {
			s.WriteString(r + "\r\n")
		}
	}
	a, b := flow.Endpoint{Port: 40000}, flow.Endpoint{Port: 2525}
	return &flow.Conn{ID: 3, Client: a, Server: b, ToServer: half(a, b, []byte(c.String())), ToClient: half(b, a, []byte(s.String()))}
}

var greet = []exchange{
	{"", []string{"220 mail.example.com ESMTP Postfix (Debian/GNU)"}},
	{"EHLO laptop\r\n", []string{"250-mail.example.com", "250-PIPELINING", "250 CHUNKING"}},
}

const note = "From: a@example.com\r\nSubject: hi\r\n\r\nplain body\r\n"

func TestSessions(t *testing.T) {
	t.Parallel()
	chunk1 := "From: a@example.com\r\nSubject: chunks\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	chunk2 := "ZmxhZ3tiZGF0f Q==\r\n" // a stray space a sloppy encoder left
	tests := []struct {
		name     string
		ex       []exchange
		want     []want
		warnings []string
	}{
		{
			name: "BDAT chunks, base64 with a stray byte",
			ex: append(greet[:2:2],
				exchange{"MAIL FROM:<a@example.com>\r\n", []string{"250 2.1.0 Ok"}},
				exchange{"RCPT TO:<b@example.com>\r\n", []string{"250 2.1.5 Ok"}},
				exchange{fmt.Sprintf("BDAT %d\r\n%s", len(chunk1), chunk1), []string{"250 2.0.0 Ok: 97 bytes"}},
				exchange{fmt.Sprintf("BDAT %d LAST\r\n%s", len(chunk2), chunk2), []string{"250 2.0.0 Ok: queued as 1234"}},
				exchange{"QUIT\r\n", []string{"221 2.0.0 Bye"}}),
			want: []want{
				{name: "smtp-3-1.eml", data: []byte(chunk1 + chunk2), decoded: []string{"BDAT chunks joined"}, complete: true},
				{name: "smtp-3-1-part-1.txt", data: []byte("flag{bdat}"), decoded: []string{"base64"}, complete: true,
					notes: []string{"1 bytes that are not base64 skipped"}},
			},
		},
		{
			name: "DATA refused, then a second message after AUTH LOGIN",
			ex: append(greet[:2:2],
				exchange{"MAIL FROM:<a@example.com>\r\n", []string{"250 2.1.0 Ok"}},
				exchange{"RCPT TO:<nobody@example.com>\r\n", []string{"550 5.1.1 <nobody@example.com>: Recipient address rejected"}},
				exchange{"DATA\r\n", []string{"554 5.5.1 Error: no valid recipients"}},
				exchange{"RSET\r\n", []string{"250 2.0.0 Ok"}},
				exchange{"AUTH LOGIN\r\n", []string{"334 VXNlcm5hbWU6"}},
				exchange{"YWxpY2U=\r\n", []string{"334 UGFzc3dvcmQ6"}},
				exchange{"c2VjcmV0\r\n", []string{"235 2.7.0 Authentication successful"}},
				exchange{"MAIL FROM:<a@example.com>\r\n", []string{"250 2.1.0 Ok"}},
				exchange{"RCPT TO:<b@example.com>\r\n", []string{"250 2.1.5 Ok"}},
				exchange{"DATA\r\n", []string{"354 End data with <CR><LF>.<CR><LF>"}},
				exchange{note + ".\r\n", []string{"250 2.0.0 Ok: queued as 99"}}),
			want: []want{{name: "smtp-3-1.eml", data: []byte(note), complete: true, notes: []string{"RCPT TO:<b@example.com>", "queued as 99"}}},
		},
		{
			name: "STARTTLS ends what can be read",
			ex: append(greet[:2:2],
				exchange{"STARTTLS\r\n", []string{"220 2.0.0 Ready to start TLS"}},
				exchange{"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", nil}),
			warnings: []string{"STARTTLS at client→server offset 13: the rest of the session is encrypted"},
		},
		{
			name: "FTP is not SMTP",
			ex:   []exchange{{"", []string{"220 (vsFTPd 3.0.3)"}}, {"USER anonymous\r\n", []string{"331 Please specify the password."}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			objs, warns := Extract([]*flow.Conn{conn(tc.ex)})
			check(t, objs, warns, tc.want, tc.warnings)
		})
	}
}

func TestRFC2047Names(t *testing.T) {
	t.Parallel()
	tests := []struct{ header, want string }{
		{`attachment; filename="=?UTF-8?B?csOpc3Vtw6kucGRm?="`, "résumé.pdf"},
		{`attachment; filename="=?iso-8859-1?Q?r=E9sum=E9.pdf?="`, "résumé.pdf"},
		{`attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf`, "résumé.pdf"},
		{`attachment; filename=report 2024.pdf`, "report 2024.pdf"},
	}
	for _, tc := range tests {
		msg := "Content-Type: application/pdf\r\nContent-Disposition: " + tc.header + "\r\n\r\n%PDF\r\n"
		o := &flow.Object{Name: "m.eml"}
		w := &walker{msg: o, base: "m"}
		w.message(strings.NewReader(msg), 0)
		if len(w.objs) != 1 || w.objs[0].Name != tc.want {
			var got []string
			for _, x := range w.objs {
				got = append(got, x.Name)
			}
			t.Errorf("name from %q = %q, want %q", tc.header, got, tc.want)
		}
	}
}
