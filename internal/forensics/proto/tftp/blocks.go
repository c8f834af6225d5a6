package tftp

import (
	"bytes"
	"fmt"
	"sort"
)

// place numbers the DATA blocks in the order they were sent, unwrapping
// block numbers past 65535, keeps the first copy of each and returns them
// sorted. A wrap is believed only after most of a cycle was seen (32768
// distinct blocks, then a block number near 0 after one near 65535), so
// that a corrupt block number cannot push data gigabytes out. After a
// wrap, implementations go on with block 0 or with block 1; a capture
// that never shows block 0 after a wrap is read the second way.
func place(datas []tpkt) ([]block, []string) {
	type raw struct {
		epoch int64
		num   int64
		p     tpkt
	}
	var (
		seq      []raw
		epoch    int64
		lastNum  int64 = -1
		inEpoch        = map[int64]bool{}
		zeroSeen bool
		notes    []string
	)
	for _, d := range datas {
		n := int64(d.pk.block)
		e := epoch
		switch {
		case lastNum >= 65536-4096 && n < 4096 && len(inEpoch) >= 32768:
			epoch++
			e = epoch
			inEpoch = map[int64]bool{}
		case epoch > 0 && lastNum < 4096 && n >= 65536-4096:
			e = epoch - 1 // a late copy from before the wrap
		}
		if e == epoch {
			lastNum = n
			inEpoch[n] = true
		}
		if e > 0 && n == 0 {
			zeroSeen = true
		}
		seq = append(seq, raw{e, n, d})
	}
	toOne := epoch > 0 && !zeroSeen
	if epoch > 0 {
		if toOne {
			notes = append(notes, fmt.Sprintf("block numbers wrapped %d time(s), going on from 1", epoch))
		} else {
			notes = append(notes, fmt.Sprintf("block numbers wrapped %d time(s), going on from 0", epoch))
		}
	}
	byIndex := map[int64]int{}
	var blocks []block
	dups, differ := 0, 0
	for _, r := range seq {
		var idx int64
		switch {
		case r.epoch == 0 && r.num == 0:
			notes = append(notes, fmt.Sprintf("frame %d: DATA block 0 before any wrap: ignored", r.p.dg.Frame))
			continue
		case toOne:
			idx = r.epoch*65535 + r.num - 1
		default:
			idx = r.epoch*65536 + r.num - 1
		}
		if i, ok := byIndex[idx]; ok {
			dups++
			if !bytes.Equal(blocks[i].payload, r.p.pk.payload) {
				differ++
				notes = append(notes, fmt.Sprintf("block %d came twice with different bytes (frames %d and %d): the first kept",
					r.num, blocks[i].dg.Frame, r.p.dg.Frame))
			}
			continue
		}
		byIndex[idx] = len(blocks)
		blocks = append(blocks, block{index: idx, payload: r.p.pk.payload, dg: r.p.dg})
	}
	if dups > differ {
		notes = append(notes, fmt.Sprintf("%d duplicate block(s) (retransmissions) dropped", dups-differ))
	}
	sort.Slice(blocks, func(i, j int) bool { return blocks[i].index < blocks[j].index })
	return blocks, notes
}

// bound drops the blocks that lie more than maxHole past the ones before.
func bound(blocks []block, bs int64) ([]block, []string) {
	end := int64(0)
	for i, b := range blocks {
		if b.index*bs-end > maxHole {
			return blocks[:i], []string{fmt.Sprintf("%d block(s) from block %d on lie more than 1 GiB past the rest (corrupt block numbers?): dropped",
				len(blocks)-i, b.index+1)}
		}
		end = b.index*bs + int64(len(b.payload))
	}
	return blocks, nil
}
