// Package smtp extracts mail from SMTP (and LMTP) sessions in reassembled
// TCP connections: each message as a .eml object, and its attachments
// and encoded parts decoded.
//
// A session is told by content, on any port: the client's EHLO, HELO or
// LHLO, or a 220 greeting naming SMTP followed by 250 or 354 replies.
// The client's commands are read in order and each takes the server's
// next reply (PIPELINING keeps that order); AUTH's 334 challenges take
// the client's answers, and STARTTLS ends the readable part. DATA's
// content runs to the line holding a single dot, the dot that starts any
// other line removed; BDAT chunks are joined until LAST. Without the
// server's side, DATA is taken as accepted unless the client's next line
// is a command. Without the client's side there is no content: a warning
// counts the messages the server accepted.
//
// A message is parsed as MIME: multiparts (nested, up to 10 levels and
// 1000 parts), attached messages (walked too), and leaves. A leaf with a
// file name (Content-Disposition filename, RFC 2231 and RFC 2047 forms
// included, else Content-Type name) or an "attachment" disposition is an
// object; so is one in base64 or quoted-printable, whose text the .eml
// does not show. Base64 decoding skips bytes outside the alphabet (and
// says how many); a part whose decoding fails keeps what decoded, marked
// incomplete.
//
// Messages are held in a proto.Buffer (memory, then an unlinked
// temporary file) up to 1 GiB each; objects own their storage.
package smtp
