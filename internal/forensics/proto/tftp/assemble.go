package tftp

import (
	"bytes"
	"fmt"
	"sort"

	"noops/internal/forensics/flow"
	"noops/internal/forensics/proto"
)

// maxHole bounds the run of missing blocks between two captured ones: a
// block further out (a corrupt or hostile block number) is dropped
// rather than making a file of zeros.
const maxHole = 1 << 30

// block is one DATA block placed in the file.
type block struct {
	index   int64 // 0-based position in the file
	payload []byte
	dg      *flow.Datagram
}

// assemble makes the object of one transfer, or says why there is none.
func assemble(g *group) (*flow.Object, []flow.Warning) {
	req := g.req
	what := fmt.Sprintf("TFTP transfer %s↔%s", g.key.a, g.key.b)
	if req != nil {
		what = fmt.Sprintf("TFTP %s %q", opName(req.pk.op), req.pk.name)
	}
	sender, receiver := roles(g)
	var (
		datas   []tpkt
		oack    map[string]string
		lastAck = -1
		errPk   *tpkt
		notes   []string
	)
	for i, p := range g.pkts {
		if !p.ok {
			continue
		}
		switch p.pk.op {
		case opDATA:
			if p.dg.Src == sender {
				datas = append(datas, p)
			}
		case opACK:
			if p.dg.Src == receiver {
				lastAck = max(lastAck, int(p.pk.block))
			}
		case opOACK:
			oack = p.pk.opts
		case opERROR:
			if errPk == nil {
				errPk = &g.pkts[i]
			}
		}
	}
	if len(datas) == 0 {
		var msg string
		switch {
		case errPk != nil:
			msg = fmt.Sprintf("%s: ERROR %d %q from %s", what, errPk.pk.block, errPk.pk.text, errPk.dg.Src)
		case lastAck >= 0:
			msg = fmt.Sprintf("%s: the DATA sent by %s was not captured (only the other side?); %s acknowledged blocks up to %d",
				what, sender, receiver, lastAck)
		default:
			msg = fmt.Sprintf("%s: no DATA captured", what)
		}
		return nil, []flow.Warning{{Frame: g.pkts[0].dg.Frame, Message: msg}}
	}

	bs, tsize := int64(512), int64(-1)
	if req != nil {
		notes = append(notes, fmt.Sprintf("%s %q mode %s%s", opName(req.pk.op), req.pk.name, req.pk.mode, optText(req.pk.opts)))
		if req.pk.op == opWRQ {
			tsize = intOpt(req.pk.opts, "tsize", 0, proto.MaxOffset)
		}
		if req.pk.mode == "netascii" {
			notes = append(notes, "netascii mode: line endings are as sent, not as stored")
		}
	}
	if oack != nil {
		notes = append(notes, "OACK"+optText(oack))
		if n := intOpt(oack, "blksize", 8, maxBlockSize); n > 0 {
			bs = n
		}
		if n := intOpt(oack, "tsize", 0, proto.MaxOffset); n >= 0 && (req == nil || req.pk.op == opRRQ) {
			tsize = n
		}
	}
	if most := maxPayload(datas); most > bs {
		notes = append(notes, fmt.Sprintf("blocks of %d bytes: the block size (%d announced or assumed) taken from the data", most, bs))
		bs = most
	}

	blocks, more := place(datas)
	notes = append(notes, more...)
	blocks, more = bound(blocks, bs)
	notes = append(notes, more...)

	a := &proto.Assembly{}
	final := int64(-1)
	var size int64
	for _, b := range blocks {
		off := b.index * bs
		a.Add(off, bytes.NewReader(b.payload), 0, int64(len(b.payload)))
		size = max(size, off+int64(len(b.payload)))
		if int64(len(b.payload)) < bs && final < 0 {
			final = b.index
		}
	}
	if final >= 0 {
		size = final*bs + int64(len(blocks[indexOf(blocks, final)].payload))
	}
	a.SetSize(size)

	o := &flow.Object{
		Protocol: "tftp", Data: a, Size: size, ExpectedSize: tsize,
		Flow: flow.FlowRef{Proto: "udp", Src: sender, Dst: receiver},
	}
	if req != nil {
		o.Name, o.NameFrom = req.pk.name, opName(req.pk.op)
		o.Control = flow.FlowRef{Proto: "udp", Src: req.dg.Src, Dst: req.dg.Dst}
	} else {
		o.Name = fmt.Sprintf("tftp-%d", sender.Port)
		notes = append(notes, "the request was not captured")
	}
	first, last := datas[0].dg, datas[len(datas)-1].dg
	o.Frames = flow.Frames{First: first.Frame, Last: last.Frame, FirstTime: first.Time, LastTime: last.Time}
	o.Gaps = a.Gaps(size)
	for _, g := range o.Gaps {
		notes = append(notes, fmt.Sprintf("blocks %d-%d missing (bytes %d-%d)", g.Start/bs+1, (g.End-1)/bs+1, g.Start, g.End))
	}
	if tsize > size {
		o.Gaps = append(o.Gaps, flow.Range{Start: size, End: tsize})
	}
	if tsize >= 0 && tsize != size {
		notes = append(notes, fmt.Sprintf("size mismatch: tsize said %d bytes, the capture holds %d", tsize, size))
	}
	switch {
	case errPk != nil:
		notes = append(notes, fmt.Sprintf("aborted: ERROR %d %q from %s", errPk.pk.block, errPk.pk.text, errPk.dg.Src))
	case final < 0:
		notes = append(notes, "no short final block: the transfer did not end in the capture")
	}
	o.Complete = final >= 0 && errPk == nil && len(o.Gaps) == 0
	o.Notes = notes
	return o, nil
}

// roles finds the sending and receiving endpoints: the server sends for
// RRQ, the client for WRQ; without the request, whoever sent DATA.
func roles(g *group) (sender, receiver flow.Endpoint) {
	a, b := g.key.a, g.key.b
	if g.req != nil {
		client := g.req.dg.Src
		server := a
		if server == client {
			server = b
		}
		if g.req.pk.op == opWRQ {
			return client, server
		}
		return server, client
	}
	na, nb := 0, 0
	for _, p := range g.pkts {
		if p.ok && p.pk.op == opDATA {
			if p.dg.Src == a {
				na++
			} else {
				nb++
			}
		}
	}
	if nb > na {
		return b, a
	}
	return a, b
}

func maxPayload(datas []tpkt) int64 {
	var m int64
	for _, d := range datas {
		m = max(m, int64(len(d.pk.payload)))
	}
	return m
}

func optText(opts map[string]string) string {
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := ""
	for _, k := range keys {
		s += fmt.Sprintf(" %s=%s", k, opts[k])
	}
	return s
}

func indexOf(blocks []block, index int64) int {
	return sort.Search(len(blocks), func(i int) bool { return blocks[i].index >= index })
}
