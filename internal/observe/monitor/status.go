package monitor

import (
	"fmt"
	"strconv"
	"strings"
)

// statusRange is an accepted range of HTTP status codes, both ends
// included.
type statusRange struct{ lo, hi int }

func (r statusRange) has(code int) bool { return code >= r.lo && code <= r.hi }

// parseStatus parses one accepted-status pattern: a code ("200"), a class
// ("2xx", any case) or a range ("200-399"). Codes are 100 to 599.
func parseStatus(p string) (statusRange, error) {
	bad := func() (statusRange, error) {
		return statusRange{}, fmt.Errorf("%q is not a status code (200), a class (2xx) or a range (200-399)", clip(p, 32))
	}
	s := strings.TrimSpace(p)
	if len(s) == 3 && (s[1] == 'x' || s[1] == 'X') && (s[2] == 'x' || s[2] == 'X') {
		if s[0] < '1' || s[0] > '5' {
			return bad()
		}
		lo := int(s[0]-'0') * 100
		return statusRange{lo, lo + 99}, nil
	}
	if a, b, ok := strings.Cut(s, "-"); ok {
		lo, ok1 := statusCode(strings.TrimSpace(a))
		hi, ok2 := statusCode(strings.TrimSpace(b))
		if !ok1 || !ok2 {
			return bad()
		}
		if lo > hi {
			return statusRange{}, fmt.Errorf("%q is an empty range: %d is above %d", clip(p, 32), lo, hi)
		}
		return statusRange{lo, hi}, nil
	}
	c, ok := statusCode(s)
	if !ok {
		return bad()
	}
	return statusRange{c, c}, nil
}

// statusCode parses exactly three digits between 100 and 599.
func statusCode(s string) (int, bool) {
	if len(s) != 3 {
		return 0, false
	}
	for i := 0; i < 3; i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 100 || n > 599 {
		return 0, false
	}
	return n, true
}

// acceptStatus reports whether code is in one of rs.
func acceptStatus(rs []statusRange, code int) bool {
	for _, r := range rs {
		if r.has(code) {
			return true
		}
	}
	return false
}
