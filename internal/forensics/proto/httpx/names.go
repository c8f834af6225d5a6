package httpx

import (
	"mime"
	"net/url"
	"strings"

	"noops/internal/forensics/proto"
)

// extByType gives names made up for bodies an extension; a fixed table,
// so that names do not depend on the machine's mime.types.
var extByType = map[string]string{
	"text/html": ".html", "text/plain": ".txt", "text/css": ".css", "text/csv": ".csv", "text/xml": ".xml",
	"text/javascript": ".js", "application/javascript": ".js", "application/json": ".json",
	"application/xml": ".xml", "application/xhtml+xml": ".xhtml", "application/pdf": ".pdf",
	"application/zip": ".zip", "application/gzip": ".gz", "application/x-gzip": ".gz",
	"application/x-tar": ".tar", "application/x-bzip2": ".bz2", "application/x-xz": ".xz",
	"application/zstd": ".zst", "application/x-7z-compressed": ".7z", "application/vnd.rar": ".rar",
	"application/x-rar-compressed": ".rar", "application/octet-stream": ".bin",
	"application/vnd.tcpdump.pcap": ".pcap", "application/x-pcapng": ".pcapng",
	"application/x-executable": ".elf", "application/x-sh": ".sh", "application/wasm": ".wasm",
	"application/x-www-form-urlencoded": ".form", "multipart/form-data": ".multipart",
	"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp",
	"image/svg+xml": ".svg", "image/x-icon": ".ico", "image/vnd.microsoft.icon": ".ico", "image/bmp": ".bmp",
	"audio/mpeg": ".mp3", "video/mp4": ".mp4", "font/woff2": ".woff2", "font/woff": ".woff",
	"message/rfc822": ".eml",
}

// mediaType is Content-Type's type/subtype, lower-cased.
func mediaType(ct string) string {
	t, _, _ := strings.Cut(ct, ";")
	return proto.ASCIILower(strings.TrimSpace(t))
}

func extFor(ct string) string {
	if e, ok := extByType[mediaType(ct)]; ok {
		return e
	}
	return ".bin"
}

// dispositionName reads Content-Disposition's filename (filename*
// per RFC 6266/8187 first, RFC 2047 words decoded), as given.
func dispositionName(v string) string {
	if v == "" {
		return ""
	}
	if _, params, err := mime.ParseMediaType(v); err == nil {
		if n := params["filename"]; n != "" {
			return decodeWords(n)
		}
		return ""
	}
	// Malformed parameters (unquoted spaces, a stray ';'): find the
	// value by hand.
	lower := proto.ASCIILower(v)
	i := strings.Index(lower, "filename=")
	if i < 0 {
		return ""
	}
	s := strings.TrimSpace(v[i+len("filename="):])
	if strings.HasPrefix(s, `"`) {
		if j := strings.IndexByte(s[1:], '"'); j >= 0 {
			return decodeWords(s[1 : 1+j])
		}
		return decodeWords(s[1:])
	}
	s, _, _ = strings.Cut(s, ";")
	return decodeWords(strings.TrimSpace(s))
}

func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	d := mime.WordDecoder{}
	if out, err := d.DecodeHeader(s); err == nil {
		return out
	}
	return s
}

// urlName is the last segment of a request target's path, unescaped as
// given ("" when the path ends with "/").
func urlName(target string) string {
	p := target
	if u, err := url.Parse(target); err == nil && u.Path != "" {
		p = u.EscapedPath()
	} else {
		p, _, _ = strings.Cut(p, "?")
		p, _, _ = strings.Cut(p, "#")
	}
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		p = p[i+1:]
	}
	if un, err := url.PathUnescape(p); err == nil {
		p = un
	}
	return p
}
