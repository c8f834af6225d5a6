package trace

import "testing"

func TestParse(t *testing.T) {
	good := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	p, ok := Parse(good)
	if !ok || p.String() != good || p.TraceIDString() != "4bf92f3577b34da6a3ce929d0e0e4736" || p.Flags != 1 {
		t.Fatalf("Parse(%q) = %+v, %v", good, p, ok)
	}
	if _, ok := Parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"); !ok {
		t.Error("a later version with more fields must parse")
	}
	for _, bad := range []string{
		"", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
		"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
	} {
		if _, ok := Parse(bad); ok {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestNewAndChild(t *testing.T) {
	p := New()
	if _, ok := Parse(p.String()); !ok {
		t.Fatalf("New() = %q does not parse", p)
	}
	c := p.Child()
	if c.TraceID != p.TraceID || c.SpanID == p.SpanID {
		t.Fatalf("Child kept the span or lost the trace: %s → %s", p, c)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Fuzz(func(t *testing.T, s string) {
		p, ok := Parse(s)
		if ok && len(s) == 55 && s[:2] == "00" {
			if _, ok2 := Parse(p.String()); !ok2 {
				t.Fatalf("round trip of %q failed", s)
			}
		}
	})
}
