// Package ftp extracts the files of FTP sessions from reassembled TCP
// connections, including captures that hold only one side.
//
// Control connections are told by content, on any port: the server's
// replies ("220 (vsFTPd 3.0.3)", 331, 227, 150, 226, …) and the client's
// commands (USER, PASS, RETR, …), with SMTP's EHLO and 354 counting
// against. With both sides, commands and replies are paired in order
// (FTP answers each command with 1xx replies and one final reply; a
// reply that only a later command can have, such as a 227 while the
// current command is TYPE, skips ahead over lost commands). With only the
// server's side, replies are grouped the same way and the command is
// inferred from them: 227/229 is PASV/EPSV, 150 a transfer whose name
// and size come from the reply's text (vsftpd's "Opening BINARY mode data
// connection for secret.tar (10240 bytes).", ProFTPD's and IIS's forms,
// FileZilla's "…of "/x"", Pure-FTPd's "N kbytes to download"), 350 a
// REST and 213 a SIZE. With only the client's side there are no replies:
// completion is unknown and passive ports come from nowhere.
//
// Data connections are matched to transfers in the order of the
// transfers on each control connection: the address from 227/229
// (passive) or PORT/EPRT (active) first, the same port with another
// address next (NAT), and otherwise the next connection between the
// control connection's two hosts (port 20 first in active mode) that
// starts after the previous transfer's and before the control connection
// ends. The reassembled streams carry no per-segment times, so "after the
// 150 reply" cannot be checked more finely than that order.
//
// The file is the data connection's direction from the FTP server for
// RETR and listings, from the client for STOR, APPE and STOU, and,
// when the command was not captured, whichever direction carried bytes.
// A transfer after REST n is placed at offset n of the earlier transfer
// of the same name to the same server (first copy of a byte wins;
// differing copies are noted). The size is checked against the 150 reply
// (vsftpd announces the whole file even after REST, ProFTPD what is
// left) and the 213 reply to SIZE; 226 (or 250) marks a completed
// transfer, anything else an aborted one. Objects keep what was captured:
// Gaps lists what is missing in object offsets, including a missing tail
// past Size up to the announced size.
//
// Objects are views of the data connections' storage (proto.Assembly),
// not copies.
package ftp
