package ftp

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"noops/internal/forensics/flow"
)

// vsftpd 3.0.3's replies, as it sends them.
var vsLogin = []step{
	{"", []string{"220 (vsFTPd 3.0.3)"}},
	{"USER anonymous", []string{"331 Please specify the password."}},
	{"PASS anonymous@", []string{"230 Login successful."}},
	{"SYST", []string{"215 UNIX Type: L8"}},
	{"TYPE I", []string{"200 Switching to Binary mode."}},
}

var vsQuit = step{"QUIT", []string{"221 Goodbye."}}

func pasv(port int) step {
	return step{"PASV", []string{fmt.Sprintf("227 Entering Passive Mode (127,0,0,1,%d,%d).", port>>8, port&255)}}
}

func epsv(port int) step {
	return step{"EPSV", []string{fmt.Sprintf("229 Entering Extended Passive Mode (|||%d|)", port)}}
}

func retr(name string, size int, final string) step {
	return step{"RETR " + name, []string{
		fmt.Sprintf("150 Opening BINARY mode data connection for %s (%d bytes).", name, size), final}}
}

func steps(parts ...[]step) []step {
	var out []step
	for _, s := range parts {
		out = append(out, s...)
	}
	return out
}

const done = "226 Transfer complete."

type want struct {
	name, nameFrom string
	data           []byte
	expected       int64
	complete       bool
	gaps           []flow.Range
	notes          []string
	decoded        []string
	flowConn       int
	nonotes        []string
}

func TestExtract(t *testing.T) {
	t.Parallel()
	file := content(1, 1048576)
	other := content(2, 300000)
	small := content(3, 5000)
	cli := ep("127.0.0.1:51234")
	srv := ep("127.0.0.1:21")
	srv2121 := ep("127.0.0.1:2121")
	pasvData := func(id int, port uint16, body []byte) *flow.Conn {
		return dataConn(id, ep(fmt.Sprintf("127.0.0.1:%d", 52000+id)), flow.Endpoint{Addr: srv.Addr, Port: port}, []byte{}, body)
	}
	gapped := bytes.Clone(file)
	clear(gapped[100000:200000])
	tests := []struct {
		name     string
		conns    []*flow.Conn
		want     []want
		warnings []string
	}{
		{
			name: "passive PASV on port 21",
			conns: []*flow.Conn{
				ctrlConn(1, cli, srv, steps(vsLogin, []step{{"SIZE file.bin", []string{"213 1048576"}}, pasv(40000), retr("file.bin", len(file), done), vsQuit}), both),
				pasvData(2, 40000, file),
			},
			want: []want{{name: "file.bin", nameFrom: "RETR", data: file, expected: 1048576, complete: true, flowConn: 2,
				notes: []string{"matched by 227 reply 127.0.0.1:40000"}, nonotes: []string{"mismatch", "aborted", "not captured"}}},
		},
		{
			name: "passive EPSV on port 2121",
			conns: []*flow.Conn{
				ctrlConn(1, cli, srv2121, steps(vsLogin, []step{epsv(40001), retr("/pub/file.bin", len(file), done), vsQuit}), both),
				dataConn(2, ep("127.0.0.1:52002"), ep("127.0.0.1:40001"), []byte{}, file),
			},
			want: []want{{name: "/pub/file.bin", nameFrom: "RETR", data: file, expected: 1048576, complete: true, flowConn: 2}},
		},
		{
			name: "active PORT, the server connects from port 20",
			conns: []*flow.Conn{
				ctrlConn(1, cli, srv, steps(vsLogin, []step{
					{"PORT 127,0,0,1,200,10", []string{"200 PORT command successful. Consider using PASV."}},
					retr("file.bin", len(file), done), vsQuit}), both),
				dataConn(2, ep("127.0.0.1:20"), ep("127.0.0.1:51210"), file, []byte{}),
			},
			want: []want{{name: "file.bin", nameFrom: "RETR", data: file, expected: 1048576, complete: true, flowConn: 2,
				notes: []string{"active", "PORT command 127.0.0.1:51210"}}},
		},
		{
			name: "active EPRT on port 2121",
			conns: []*flow.Conn{
				ctrlConn(1, cli, srv2121, steps(vsLogin, []step{
					{"EPRT |1|127.0.0.1|51211|", []string{"200 EPRT command successful. Consider using EPSV."}},
					retr("file.bin", len(file), done), vsQuit}), both),
				dataConn(2, ep("127.0.0.1:20"), ep("127.0.0.1:51211"), file, []byte{}),
			},
			want: []want{{name: "file.bin", nameFrom: "RETR", data: file, expected: 1048576, complete: true, flowConn: 2}},
		},
		{
			name: "server-only passive: the name from the 150 reply",
			conns: []*flow.Conn{
				ctrlConn(1, cli, srv, steps(vsLogin, []step{pasv(40000), retr("secret.tar", len(file), done), vsQuit}), serverOnly),
				dataConn(2, ep("127.0.0.1:52002"), ep("127.0.0.1:40000"), nil, file),
			},
			want: []want{{name: "secret.tar", nameFrom: "150 reply", data: file, expected: 1048576, complete: true, flowConn: 2,
				notes: []string{"client's command was not captured"}}},
		},
		{
			name: "server-only, no SYNs: both connections' roles swapped",
			conns: []*flow.Conn{
				func() *flow.Conn {
					c := ctrlConn(1, ep("127.0.0.1:2000"), ep("127.0.0.1:60021"), steps(vsLogin, []step{pasv(40000), retr("secret.tar", len(file), done)}), serverOnly)
					c.Client, c.Server, c.ToServer, c.ToClient = c.Server, c.Client, c.ToClient, nil
					return c
				}(),
				dataConn(2, ep("127.0.0.1:40000"), ep("127.0.0.1:35000"), file, nil),
			},
			want: []want{{name: "secret.tar", nameFrom: "150 reply", data: file, expected: 1048576, complete: true, flowConn: 2}},
		},
		{
			name: "server-only active on port 2121: matched by timing, port 20",
			conns: []*flow.Conn{
				ctrlConn(1, cli, srv2121, steps(vsLogin, []step{
					{"PORT 127,0,0,1,200,10", []string{"200 PORT command successful. Consider using PASV."}},
					retr("secret.tar", len(file), done), vsQuit}), serverOnly),
				dataConn(2, ep("127.0.0.1:51999"), ep("127.0.0.1:80"), []byte("GET / HTTP/1.1\r\n\r\n"), []byte("HTTP/1.1 200 OK\r\n\r\n")),
				dataConn(3, ep("127.0.0.1:20"), ep("127.0.0.1:51210"), file, nil),
			},
			want: []want{{name: "secret.tar", nameFrom: "150 reply", data: file, expected: 1048576, complete: true, flowConn: 3,
				notes: []string{"timing"}}},
		},
		{
			name: "client-only STOR: completion unknown",
			conns: []*flow.Conn{
				ctrlConn(1, cli, srv, steps(vsLogin, []step{pasv(40000),
					{"STOR upload.bin", []string{"150 Ok to send data.", done}}, vsQuit}), clientOnly),
				dataConn(2, ep("127.0.0.1:52002"), ep("127.0.0.1:40000"), small, nil),
			},
			want: []want{{name: "upload.bin", nameFrom: "STOR", data: small, expected: -1, complete: false, flowConn: 2,
				notes: []string{"upload", "whether the transfer completed is unknown"}}},
		},
		{
			name: "client-only RETR: the download is not in the capture",
			conns: []*flow.Conn{
				ctrlConn(1, cli, srv, steps(vsLogin, []step{pasv(40000), retr("file.bin", len(file), done), vsQuit}), clientOnly),
				dataConn(2, ep("127.0.0.1:52002"), ep("127.0.0.1:40000"), []byte{}, nil),
			},
			warnings: []string{"server→client data of conn 2 was not captured"},
		},
		{
			name: "server-only STOR: the upload is not in the capture",
			conns: []*flow.Conn{
				ctrlConn(1, cli, srv, steps(vsLogin, []step{pasv(40000), {"STOR up.bin", []string{"150 Ok to send data.", done}}}), serverOnly),
				dataConn(2, ep("127.0.0.1:52002"), ep("127.0.0.1:40000"), nil, []byte{}),
			},
			warnings: []string{"the client→server data of conn 2 was not captured"},
		},
		{
			name: "server-only, an empty file",
			conns: []*flow.Conn{
				ctrlConn(1, cli, srv, steps(vsLogin, []step{pasv(40000), retr("empty", 0, done)}), serverOnly),
				pasvData(2, 40000, []byte{}),
			},
			want: []want{{name: "empty", nameFrom: "150 reply", data: []byte{}, expected: 0, complete: true, flowConn: 2}},
		},
		{
			name: "REST: an aborted transfer resumed on a new session is one file",
			conns: []*flow.Conn{
				ctrlConn(1, cli, srv, steps(vsLogin, []step{pasv(40000),
					retr("file.bin", len(file), "426 Failure writing network stream."), vsQuit}), both),
				pasvData(2, 40000, file[:400000]),
				ctrlConn(3, ep("127.0.0.1:51300"), srv, steps(vsLogin, []step{pasv(40010),
					{"REST 400000", []string{"350 Restart position accepted (400000)."}},
					retr("file.bin", len(file), done), vsQuit}), both),
				pasvData(4, 40010, file[400000:]),
			},
			want: []want{{name: "file.bin", nameFrom: "RETR", data: file, expected: 1048576, complete: true, flowConn: 2,
				decoded: []string{"REST 400000 stitched"}, notes: []string{"transfer aborted: 426", "bytes 400000-1048576 from data conn 4"},
				nonotes: []string{"size mismatch: the 150 reply announced 1048576 bytes, the capture holds 1000000"}}},
		},
		{
			name: "REST server-only, overlapping: the copies agree",
			conns: []*flow.Conn{
				ctrlConn(1, cli, srv, steps(vsLogin, []step{pasv(40000), retr("file.bin", len(file), "426 Failure writing network stream."),
					pasv(40001), {"REST 1024", []string{"350 Restart position accepted (1024)."}}, retr("file.bin", len(file), done)}), serverOnly),
				pasvData(2, 40000, file[:500000]),
				pasvData(3, 40001, file[1024:]),
			},
			want: []want{{name: "file.bin", nameFrom: "150 reply", data: file, expected: 1048576, complete: true, flowConn: 2,
				decoded: []string{"REST 1024 stitched"}, notes: []string{"1024-500000 received twice (conn 3 after REST), identical"},
				nonotes: []string{"size mismatch: the 150 reply announced 1048576 bytes, the capture holds 1000000"}}},
		},
		{
			name: "size mismatch: fewer bytes than the 150 reply announced",
			conns: []*flow.Conn{
				ctrlConn(1, cli, srv, steps(vsLogin, []step{pasv(40000), retr("file.bin", len(file), done)}), both),
				pasvData(2, 40000, file[:1000000]),
			},
			want: []want{{name: "file.bin", nameFrom: "RETR", data: file[:1000000], expected: 1048576, complete: false, flowConn: 2,
				gaps: []flow.Range{{Start: 1000000, End: 1048576}}, notes: []string{"size mismatch: the 150 reply announced 1048576 bytes, the capture holds 1000000"}}},
		},
		{
			name: "aborted transfer",
			conns: []*flow.Conn{
				ctrlConn(1, cli, srv, steps(vsLogin, []step{pasv(40000), retr("file.bin", len(file), "426 Failure writing network stream."),
					{"ABOR", []string{"225 No transfer to ABOR."}}}), both),
				pasvData(2, 40000, file[:65536]),
			},
			want: []want{{name: "file.bin", nameFrom: "RETR", data: file[:65536], expected: 1048576, complete: false, flowConn: 2,
				gaps: []flow.Range{{Start: 65536, End: 1048576}}, notes: []string{"transfer aborted: 426 Failure writing network stream."}}},
		},
		{
			name: "two files on one control connection",
			conns: []*flow.Conn{
				ctrlConn(1, cli, srv, steps(vsLogin, []step{pasv(40000), retr("a.bin", len(file), done),
					pasv(40000), retr("b.bin", len(other), done), vsQuit}), both),
				pasvData(2, 40000, file),
				pasvData(3, 40000, other),
			},
			want: []want{
				{name: "a.bin", nameFrom: "RETR", data: file, expected: int64(len(file)), complete: true, flowConn: 2},
				{name: "b.bin", nameFrom: "RETR", data: other, expected: int64(len(other)), complete: true, flowConn: 3},
			},
		},
		{
			name: "a data connection with a gap",
			conns: []*flow.Conn{
				ctrlConn(1, cli, srv, steps(vsLogin, []step{epsv(40000), retr("file.bin", len(file), done)}), both),
				dataConn(2, ep("127.0.0.1:52002"), ep("127.0.0.1:40000"), []byte{}, file, flow.Range{Start: 100000, End: 200000}),
			},
			want: []want{{name: "file.bin", nameFrom: "RETR", data: gapped, expected: 1048576, complete: false, flowConn: 2,
				gaps: []flow.Range{{Start: 100000, End: 200000}}, notes: []string{"bytes 100000-200000 not captured"}}},
		},
		{
			name: "STOR upload with both sides",
			conns: []*flow.Conn{
				ctrlConn(1, cli, srv, steps(vsLogin, []step{epsv(40000), {"STOR up.bin", []string{"150 Ok to send data.", done}}}), both),
				dataConn(2, ep("127.0.0.1:52002"), ep("127.0.0.1:40000"), small, []byte{}),
			},
			want: []want{{name: "up.bin", nameFrom: "STOR", data: small, expected: -1, complete: true, flowConn: 2, notes: []string{"upload"}}},
		},
		{
			name: "directory listing",
			conns: []*flow.Conn{
				ctrlConn(1, cli, srv, steps(vsLogin, []step{pasv(40000),
					{"LIST", []string{"150 Here comes the directory listing.", "226 Directory send OK."}}}), serverOnly),
				pasvData(2, 40000, []byte("-rw-r--r--    1 0        0           10240 Jan 01 00:00 secret.tar\r\n")),
			},
			want: []want{{name: "ftp-listing-1-1.txt", data: []byte("-rw-r--r--    1 0        0           10240 Jan 01 00:00 secret.tar\r\n"),
				expected: -1, complete: true, flowConn: 2, notes: []string{"directory listing"}}},
		},
		{
			name: "ProFTPD after REST announces what is left",
			conns: []*flow.Conn{
				ctrlConn(1, cli, srv, []step{{"", []string{"220 ProFTPD Server (Debian) [127.0.0.1]"}},
					{"USER ftp", []string{"331 Anonymous login ok, send your complete email address as your password"}},
					{"PASS x", []string{"230 Anonymous access granted, restrictions apply"}},
					pasv(40000), retr("file.bin", 1048576, "426 Transfer aborted. Data connection closed"),
					pasv(40001), {"REST 524288", []string{"350 Restarting at 524288. Send STORE or RETRIEVE to initiate transfer"}},
					{"RETR file.bin", []string{"150 Opening BINARY mode data connection for file.bin (524288 bytes)", "226 Transfer complete"}}}, serverOnly),
				pasvData(2, 40000, file[:524288]),
				pasvData(3, 40001, file[524288:]),
			},
			want: []want{{name: "file.bin", nameFrom: "150 reply", data: file, expected: 1048576, complete: true, flowConn: 2,
				decoded: []string{"REST 524288 stitched"}, nonotes: []string{"size mismatch: the 150 reply announced 1048576 bytes, the capture holds 1000000"}}},
		},
		{
			name: "Pure-FTPd server-only: no name, approximate size",
			conns: []*flow.Conn{
				ctrlConn(1, cli, srv, []step{{"", []string{"220---------- Welcome to Pure-FTPd [privsep] [TLS] ----------",
					"220-You are user number 1 of 50 allowed.", "220 You will be disconnected after 15 minutes of inactivity."}},
					{"USER alBERT", []string{"331 User alBERT OK. Password required"}},
					{"PASS dBASE", []string{"230 OK. Current directory is /"}},
					{"PASV", []string{"227 Entering Passive Mode (127,0,0,1,117,48)"}},
					{"RETR layer0.pkl", []string{"150-Accepted data connection", "150 1024.0 kbytes to download",
						"226-File successfully transferred", "226 0.603 seconds (measured here), 148.29 Mbytes per second"}}}, serverOnly),
				pasvData(2, 117<<8|48, file),
			},
			want: []want{{name: "ftp-1-1", data: file, expected: -1, complete: true, flowConn: 2, nonotes: []string{"mismatch"}}},
		},
		{
			name: "server-only with a long free-text banner",
			conns: []*flow.Conn{
				ctrlConn(1, cli, srv, append([]step{{"", []string{"220-Welcome to the archive", "", strings.Repeat("*", 60),
					"Unauthorised access is prohibited.", "All activity is logged.", "", strings.Repeat("*", 60), "220 ready"}}},
					pasv(40000), retr("secret.tar", len(small), done)), serverOnly),
				pasvData(2, 40000, small),
			},
			want: []want{{name: "secret.tar", nameFrom: "150 reply", data: small, expected: int64(len(small)), complete: true, flowConn: 2}},
		},
		{
			name: "NAT: the 227 address is not the captured one",
			conns: []*flow.Conn{
				ctrlConn(1, ep("192.0.2.1:51234"), ep("198.51.100.7:21"), steps(vsLogin, []step{
					{"PASV", []string{"227 Entering Passive Mode (10,0,0,5,156,64)."}}, retr("file.bin", len(small), done)}), both),
				dataConn(2, ep("192.0.2.1:52002"), ep("198.51.100.7:40000"), []byte{}, small),
			},
			want: []want{{name: "file.bin", nameFrom: "RETR", data: small, expected: int64(len(small)), complete: true, flowConn: 2,
				notes: []string{"NAT"}}},
		},
		{
			name: "a transfer without its data connection",
			conns: []*flow.Conn{
				ctrlConn(1, cli, srv, steps(vsLogin, []step{pasv(40000), retr("lost.bin", 10, done)}), both),
			},
			warnings: []string{"RETR lost.bin (control conn 1, transfer 1) (226 Transfer complete.): no data connection"},
		},
		{
			name: "AUTH TLS: the rest is not read",
			conns: []*flow.Conn{
				ctrlConn(1, cli, srv, []step{{"", []string{"220 (vsFTPd 3.0.3)"}}, {"AUTH TLS", []string{"234 Proceed with negotiation."}},
					{"\x16\x03\x01\x02\x00\x01", nil}}, both),
			},
			warnings: []string{"encrypted"},
		},
		{
			name: "SMTP is not FTP",
			conns: []*flow.Conn{
				ctrlConn(1, ep("127.0.0.1:51000"), ep("127.0.0.1:25"), []step{{"", []string{"220 mail.example.com ESMTP Postfix (Debian/GNU)"}},
					{"EHLO client", []string{"250-mail.example.com", "250-PIPELINING", "250 SMTPUTF8"}},
					{"MAIL FROM:<a@example.com>", []string{"250 2.1.0 Ok"}},
					{"RCPT TO:<b@example.com>", []string{"250 2.1.5 Ok"}},
					{"DATA", []string{"354 End data with <CR><LF>.<CR><LF>"}}}, both),
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			objs, warns := Extract(tc.conns)
			if len(objs) != len(tc.want) {
				t.Fatalf("Extract returned %d objects, want %d; warnings %v; objects %s", len(objs), len(tc.want), warns, describe(objs))
			}
			for i, w := range tc.want {
				o := objs[i]
				if o.Protocol != "ftp" || o.Name != w.name || o.NameFrom != w.nameFrom {
					t.Errorf("object %d = %q (from %q, %q), want %q from %q", i, o.Name, o.NameFrom, o.Protocol, w.name, w.nameFrom)
				}
				size := int64(len(w.data))
				if o.Size != size {
					t.Errorf("object %q: Size = %d, want %d", o.Name, o.Size, size)
				} else if got := readAll(t, o); sum(got) != sum(w.data) {
					t.Errorf("object %q: content differs from the original", o.Name)
				}
				if o.ExpectedSize != w.expected || o.Complete != w.complete {
					t.Errorf("object %q: ExpectedSize %d Complete %v, want %d %v; notes %q", o.Name, o.ExpectedSize, o.Complete, w.expected, w.complete, o.Notes)
				}
				if !slices.Equal(o.Gaps, w.gaps) {
					t.Errorf("object %q: Gaps = %v, want %v", o.Name, o.Gaps, w.gaps)
				}
				if o.Flow.Conn != w.flowConn || o.Control.Conn != tc.conns[0].ID {
					t.Errorf("object %q: Flow conn %d Control conn %d, want %d %d", o.Name, o.Flow.Conn, o.Control.Conn, w.flowConn, tc.conns[0].ID)
				}
				for _, n := range w.notes {
					if !hasNote(o, n) {
						t.Errorf("object %q: no note containing %q in %q", o.Name, n, o.Notes)
					}
				}
				for _, n := range w.nonotes {
					if hasNote(o, n) {
						t.Errorf("object %q: a note contains %q: %q", o.Name, n, o.Notes)
					}
				}
				if !slices.Equal(o.Decoded, w.decoded) {
					t.Errorf("object %q: Decoded = %q, want %q", o.Name, o.Decoded, w.decoded)
				}
			}
			for _, w := range tc.warnings {
				if !hasWarning(warns, w) {
					t.Errorf("no warning containing %q in %v", w, warns)
				}
			}
		})
	}
}

func describe(objs []*flow.Object) string {
	var b bytes.Buffer
	for _, o := range objs {
		fmt.Fprintf(&b, "[%s %d bytes conn %d %q] ", o.Name, o.Size, o.Flow.Conn, o.Notes)
	}
	return b.String()
}

func TestParse150(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text string
		want announce
	}{
		{"Opening BINARY mode data connection for file.bin (1048576 bytes).", announce{name: "file.bin", size: 1048576, kbytes: -1}},
		{"Opening BINARY mode data connection for my file (1).tar (10 bytes)", announce{name: "my file (1).tar", size: 10, kbytes: -1}},
		{"Opening BINARY mode data connection for upload.bin", announce{name: "upload.bin", size: -1, kbytes: -1}},
		{"Opening ASCII mode data connection for file list", announce{listing: true, size: -1, kbytes: -1}},
		{"Here comes the directory listing.", announce{listing: true, size: -1, kbytes: -1}},
		{"Ok to send data.", announce{size: -1, kbytes: -1, upload: 1}},
		{"Accepted data connection 91566.2 kbytes to download", announce{size: -1, kbytes: 91566.2}},
		{`Opening data channel for file download from server of "/pub/x.bin"`, announce{name: "/pub/x.bin", size: -1, kbytes: -1, upload: -1}},
		{`Opening data channel for file upload to server of "/up.bin"`, announce{name: "/up.bin", size: -1, kbytes: -1, upload: 1}},
	}
	for _, tc := range tests {
		if got := parse150(tc.text); got != tc.want {
			t.Errorf("parse150(%q) = %+v, want %+v", tc.text, got, tc.want)
		}
	}
}

func TestParseAddresses(t *testing.T) {
	t.Parallel()
	if got, ok := parse227("Entering Passive Mode (127,0,0,1,156,64)."); !ok || got != ep("127.0.0.1:40000") {
		t.Errorf("parse227 = %v %v, want 127.0.0.1:40000", got, ok)
	}
	if got, ok := parse227("Entering Passive Mode 10,1,2,3,4,5"); !ok || got != ep("10.1.2.3:1029") {
		t.Errorf("parse227 without parentheses = %v %v", got, ok)
	}
	if _, ok := parse227("Entering Passive Mode (1,2,3)."); ok {
		t.Error("parse227 accepted three numbers")
	}
	if got, ok := parse229("Entering Extended Passive Mode (|||40000|)"); !ok || got != 40000 {
		t.Errorf("parse229 = %d %v", got, ok)
	}
	if got, ok := parse229("Extended Passive mode OK (!!!30001!)"); !ok || got != 30001 {
		t.Errorf("parse229 with '!' = %d %v", got, ok)
	}
	if got, ok := parseEPRT("|2|::1|6275|"); !ok || got != ep("[::1]:6275") {
		t.Errorf("parseEPRT v6 = %v %v", got, ok)
	}
	if _, ok := parseHostPort("127,0,0,1,300,1"); ok {
		t.Error("parseHostPort accepted 300")
	}
	if n, ok := parse213("20240101120000"); ok {
		t.Errorf("parse213 took an MDTM time for a size: %d", n)
	}
}
