package main

import (
	"fmt"
	"strconv"
	"strings"
)

// host is the app's name: the SNI and Host of every request. The
// gateway routes app.localhost to the app "app"; Coraza's server ignores
// it.
const host = "app.localhost"

// searchPath is the GET's target: a search page with a query string.
const searchPath = "/search?q=shoes&page=2&sort=price"

// browser are the headers a browser sends with a same-site navigation.
const browser = "Host: " + host + "\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n" +
	"Accept-Language: en-US,en;q=0.9,de;q=0.8\r\n" +
	"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Referer: https://" + host + "/\r\n" +
	"Cookie: session=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA; theme=dark; consent=yes\r\n" +
	"Sec-Fetch-Dest: document\r\n" +
	"Sec-Fetch-Mode: navigate\r\n" +
	"Sec-Fetch-Site: same-origin\r\n" +
	"Sec-Fetch-User: ?1\r\n" +
	"Upgrade-Insecure-Requests: 1\r\n"

// kind is one request the load sends over and over.
type kind struct {
	Name     string `json:"name"`
	What     string `json:"what"`
	BodySize int    `json:"body_bytes"`
	req      []byte
}

func getKind() kind {
	return kind{Name: "get", What: "GET " + searchPath, req: []byte("GET " + searchPath + " HTTP/1.1\r\n" + browser + "\r\n")}
}

// formKind is a POST of a benign application/x-www-form-urlencoded body
// of exactly size bytes.
func formKind(size int) kind {
	body := formBody(size)
	return kind{Name: "form-" + sizeName(size), What: "POST form " + sizeLabel(size), BodySize: len(body),
		req: postRequest("/account/profile", "application/x-www-form-urlencoded", body)}
}

func postRequest(path, contentType string, body []byte) []byte {
	head := "POST " + path + " HTTP/1.1\r\n" + browser +
		"Origin: https://" + host + "\r\n" +
		"Content-Type: " + contentType + "\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	return append([]byte(head), body...)
}

func sizeName(size int) string {
	if size%1024 == 0 {
		return strconv.Itoa(size/1024) + "k"
	}
	return strconv.Itoa(size)
}

func sizeLabel(size int) string {
	if size%1024 == 0 {
		return strconv.Itoa(size/1024) + " KB"
	}
	return strconv.Itoa(size) + " B"
}

// profileFields open every form: what a profile page posts.
const profileFields = "first_name=Ada&last_name=Lovelace&email=ada.lovelace%40example.com&phone=%2B44+20+7946+0958" +
	"&street=12+St+James%27s+Square&city=London&postcode=SW1Y+4JH&country=GB&language=en-GB" +
	"&newsletter=on&csrf_token=b3BhcXVlLXRva2VuLWZvci10aGUtZm9ybQ"

// words fill the free-text fields: ordinary prose.
var words = strings.Fields(`the quick brown fox jumps over a lazy dog while our team
	ships new features every week customers love fast pages and friendly support
	please send the invoice to my office address before friday thanks again for
	the lovely dinner last night we should meet again soon maybe next month
	lorem ipsum dolor sit amet consectetur adipiscing elit sint do eiusmod tempor
	incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud`)

// formBody is the profile fields, then free-text fields ("note_1",
// "note_2", ...) of 256 bytes of words each, cut to exactly size bytes:
// a larger form has more fields, as a real one does.
func formBody(size int) []byte {
	var b strings.Builder
	b.WriteString(profileFields)
	w := 0
	for i := 1; b.Len() < size; i++ {
		fmt.Fprintf(&b, "&note_%d=", i)
		start := b.Len()
		for b.Len()-start < 256 {
			if b.Len() > start {
				b.WriteByte('+')
			}
			b.WriteString(words[w%len(words)])
			w++
		}
	}
	s := b.String()
	if len(s) > size {
		s = s[:size]
	}
	if strings.HasSuffix(s, "&") { // not a dangling separator: one more letter of the last value
		s = s[:len(s)-1] + "s"
	}
	return []byte(s)
}

// Probes prove each server is what it claims: the WAF blocks an attack in
// the query and in a form body under noops and coraza, and lets it
// through under off.
func attackGet() []byte {
	return []byte("GET /search?q=%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E HTTP/1.1\r\n" + browser + "\r\n")
}

func attackForm() []byte {
	return postRequest("/account/profile", "application/x-www-form-urlencoded",
		[]byte(profileFields+"&note_1=%27+OR+1%3D1+UNION+SELECT+password+FROM+users--+"))
}
