package anomaly

import (
	"math"
	"slices"
)

// median returns the median of xs (the mean of the middle two when len(xs)
// is even), sorting xs in place; NaN when xs is empty.
func median(xs []float64) float64 {
	n := len(xs)
	if n == 0 {
		return math.NaN()
	}
	slices.Sort(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// medianMAD returns the median of xs and the median absolute deviation from
// it, using scratch (grown as needed and returned) so that xs is left as it
// was.
func medianMAD(xs, scratch []float64) (med, mad float64, _ []float64) {
	scratch = append(scratch[:0], xs...)
	med = median(scratch)
	for i, x := range xs {
		scratch[i] = math.Abs(x - med)
	}
	return med, median(scratch), scratch
}

// sortedRing keeps the last cap(vals) values in arrival order and the same
// values sorted, so that their median costs O(1) and an update a binary
// search and a copy of at most cap(vals) values.
type sortedRing struct {
	vals   []float64 // arrival order, a ring once full
	next   int       // index of the oldest value once full
	sorted []float64
}

func newSortedRing(n int) *sortedRing {
	return &sortedRing{vals: make([]float64, 0, n), sorted: make([]float64, 0, n)}
}

// add appends x (finite), dropping the oldest value when full.
func (r *sortedRing) add(x float64) {
	if len(r.vals) < cap(r.vals) {
		r.vals = append(r.vals, x)
	} else {
		old := r.vals[r.next]
		r.vals[r.next] = x
		r.next = (r.next + 1) % len(r.vals)
		i, _ := slices.BinarySearch(r.sorted, old)
		r.sorted = slices.Delete(r.sorted, i, i+1)
	}
	i, _ := slices.BinarySearch(r.sorted, x)
	r.sorted = slices.Insert(r.sorted, i, x)
}

// ordered returns the values oldest first.
func (r *sortedRing) ordered() []float64 {
	out := make([]float64, 0, len(r.vals))
	out = append(out, r.vals[r.next:]...)
	return append(out, r.vals[:r.next]...)
}

// median returns the median of the values, NaN when there are fewer than
// minRef.
func (r *sortedRing) median() float64 {
	n := len(r.sorted)
	if n < minRef {
		return math.NaN()
	}
	if n%2 == 1 {
		return r.sorted[n/2]
	}
	return (r.sorted[n/2-1] + r.sorted[n/2]) / 2
}
