package trust

import (
	"testing"
	"time"
)

func TestScore(t *testing.T) {
	tests := []struct {
		name  string
		in    Input
		total int
		str   string
	}{
		{"nothing", Input{}, 0, "0 (no signals)"},
		{"password only", Input{Password: true}, 10, "10 (password +10)"},
		{"password and totp", Input{Password: true, SecondFactor: true}, 20, "20 (password +10, second_factor +10)"},
		{"full device", Input{Password: true, SecondFactor: true, DeviceCert: true, DeviceAge: 30 * 24 * time.Hour, KnownNetwork: true, UsualHours: true}, 45,
			"45 (password +10, second_factor +10, device_cert +10, device_age +5, known_network +5, usual_hours +5)"},
		{"young device earns no age", Input{DeviceCert: true, DeviceAge: time.Hour}, 10, "10 (device_cert +10)"},
		{"age without certificate counts nothing", Input{DeviceAge: 30 * 24 * time.Hour}, 0, "0 (no signals)"},
		{"new location", Input{Password: true, SecondFactor: true, NewLocation: true}, 10, "10 (password +10, second_factor +10, new_location −10)"},
		{"waf hits capped", Input{Password: true, SecondFactor: true, DeviceCert: true, WAFHits: 100}, 10, "10 (password +10, second_factor +10, device_cert +10, waf_hits −20)"},
		{"failed logins capped, clamped at zero", Input{Password: true, FailedLogins: 9}, 0, "0 (password +10, failed_logins −15)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Default.Score(tc.in)
			if s.Total != tc.total || s.String() != tc.str {
				t.Errorf("Score(%+v) = %s (total %d), want %s (total %d)", tc.in, s, s.Total, tc.str, tc.total)
			}
		})
	}
}

func TestPointsAndMissing(t *testing.T) {
	in := Input{Password: true, FailedLogins: 2}
	s := Default.Score(in)
	if got := s.Points(Password); got != 10 {
		t.Errorf("Points(password) = %d, want 10", got)
	}
	if got := s.Points(FailedLogins); got != -10 {
		t.Errorf("Points(failed_logins) = %d, want -10", got)
	}
	if got := s.Points(DeviceCert); got != 0 {
		t.Errorf("Points(device_cert) = %d, want 0", got)
	}
	if got, want := Default.Missing(in), "second_factor +10, device_cert +10"; got != want {
		t.Errorf("Missing = %q, want %q", got, want)
	}
}

func TestClampHigh(t *testing.T) {
	w := Default
	w.Password = 200
	if got := w.Score(Input{Password: true}).Total; got != Max {
		t.Errorf("Total = %d, want %d", got, Max)
	}
}
