package spec

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Quantity is a size in bytes written as in Kubernetes: 128Mi, 1Gi, 512M,
// or a plain number of bytes.
type Quantity int64

var suffixes = []struct {
	s string
	m int64
}{
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
	{"K", 1e3}, {"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12},
}

// ParseQuantity parses a size such as "128Mi".
func ParseQuantity(s string) (Quantity, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, suf := range suffixes {
		if strings.HasSuffix(t, suf.s) {
			t, mult = strings.TrimSuffix(t, suf.s), suf.m
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size: write e.g. 128Mi, 1Gi or a number of bytes", s)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return Quantity(n * mult), nil
}

// String formats q with the largest binary suffix that divides it.
func (q Quantity) String() string {
	for _, suf := range []struct {
		s string
		m int64
	}{{"Ti", 1 << 40}, {"Gi", 1 << 30}, {"Mi", 1 << 20}, {"Ki", 1 << 10}} {
		if q != 0 && int64(q)%suf.m == 0 {
			return strconv.FormatInt(int64(q)/suf.m, 10) + suf.s
		}
	}
	return strconv.FormatInt(int64(q), 10)
}

// UnmarshalYAML accepts "128Mi" or a number.
func (q *Quantity) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: memory must be a size such as 128Mi", n.Line)
	}
	v, err := ParseQuantity(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*q = v
	return nil
}

// MarshalText writes q as String does; JSON uses it too.
func (q Quantity) MarshalText() ([]byte, error) { return []byte(q.String()), nil }

// UnmarshalText is the inverse of MarshalText.
func (q *Quantity) UnmarshalText(b []byte) error {
	v, err := ParseQuantity(string(b))
	if err != nil {
		return err
	}
	*q = v
	return nil
}
