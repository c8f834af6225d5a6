// Package httpx extracts the bodies of HTTP/1.0 and HTTP/1.1 messages
// from reassembled TCP connections. (It is not named http so that it does
// not shadow net/http where both are used.)
//
// A connection is HTTP when a direction starts with a request line or a
// status line (or has one at a line start within its first 64 KiB, for
// captures that began mid-message). Each direction is read message by
// message: requests first, then responses, paired in order, so that
// pipelining and keep-alive give several objects per connection; 1xx
// responses are skipped without using up a request, 101 and CONNECT end
// the parse. A body is framed per RFC 9112 section 6.3: none for HEAD,
// 204 and 304; chunked (trailers skipped) when Transfer-Encoding ends
// with chunked; Content-Length; otherwise, for responses, until the
// connection closes. With the requests missing, a response whose
// Content-Length is followed at once by another status line is taken for
// the answer to a HEAD.
//
// Bodies are views of the stream, chunk data placed end to end
// (proto.Assembly), with the stream's gaps as the object's Gaps and a
// body cut off by the end of the capture ending early, its missing tail a
// gap past Size. Content-Encoding gzip, deflate (zlib or raw) and zstd
// are decoded into a proto.Buffer bounded by Options.MaxBodyBytes; br
// (no Brotli decoder in the standard library) and unknown codings are
// kept encoded with a note, as is a body whose decoding fails at once;
// one that fails part way keeps what was decoded, marked incomplete.
//
// 206 responses are gathered per resource (the request's Host and
// target, or without the request the server, ETag or Last-Modified and
// complete length) and their Content-Range pieces, multipart/byteranges
// parts included, stitched into one object whose Gaps are the ranges no
// response carried. Request bodies are objects too, and the files of a
// multipart/form-data upload each one more.
//
// Names are as the protocol gave them: Content-Disposition's filename,
// else the URL path's last segment, else "response-N" or "request-N"
// with an extension from a fixed Content-Type table.
package httpx
