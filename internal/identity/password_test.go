package identity

import (
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"

	"noops/internal/errkind"
)

// phcOf hashes password with the given parameters, as an older or newer
// HashPassword would have.
func phcOf(password string, m, t uint32, p uint8, salt []byte, keyLen uint32) string {
	key := argon2.IDKey([]byte(password), salt, t, m, p, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, m, t, p, b64.EncodeToString(salt), b64.EncodeToString(key))
}

func TestHashPasswordRoundTrip(t *testing.T) {
	t.Parallel()
	const pw = "correct horse battery"
	h1, err := HashPassword(pw)
	if err != nil {
		t.Fatalf("HashPassword(%q) = %v", pw, err)
	}
	if !strings.HasPrefix(h1, fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$", argonMemory, argonTime, argonThreads)) {
		t.Errorf("HashPassword(%q) = %q, want an argon2id PHC string with the current parameters", pw, h1)
	}
	h2, err := HashPassword(pw)
	if err != nil {
		t.Fatalf("HashPassword(%q) = %v", pw, err)
	}
	if h1 == h2 {
		t.Errorf("HashPassword(%q) twice = %q both times, want different salts", pw, h1)
	}
	tests := []struct {
		name      string
		password  string
		wantMatch bool
	}{
		{"right", pw, true},
		{"wrong", "correct horse battery staple", false},
		{"one letter off", "correct horse batterY", false},
		{"empty", "", false},
		{"too long", strings.Repeat("a", MaxPasswordLen+1), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ok, stale, err := VerifyPassword(h1, tc.password)
			if err != nil || ok != tc.wantMatch || stale {
				t.Errorf("VerifyPassword(hash, %q) = %v, %v, %v; want %v, false, nil", tc.password, ok, stale, err, tc.wantMatch)
			}
		})
	}
}

func TestCheckPassword(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		password string
		wantErr  bool
	}{
		{"empty", "", true},
		{"nine characters", "123456789", true},
		{"ten characters", "1234567890", false},
		{"ten runes of two bytes", strings.Repeat("é", 10), false},
		{"nine runes of two bytes", strings.Repeat("é", 9), true},
		{"longest", strings.Repeat("a", MaxPasswordLen), false},
		{"one byte too long", strings.Repeat("a", MaxPasswordLen+1), true},
		{"long in bytes, short in runes", strings.Repeat("€", MaxPasswordLen/3+1), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := CheckPassword(tc.password)
			if (err != nil) != tc.wantErr || (err != nil && !errkind.Is(err, errkind.Invalid)) {
				t.Errorf("CheckPassword(%q) = %v, want error %v (invalid)", tc.password, err, tc.wantErr)
			}
			if !tc.wantErr {
				return
			}
			h, err := HashPassword(tc.password)
			if !errkind.Is(err, errkind.Invalid) || h != "" {
				t.Errorf("HashPassword(%q) = %q, %v; want an invalid error", tc.password, h, err)
			}
		})
	}
}

func TestVerifyPasswordStale(t *testing.T) {
	t.Parallel()
	const pw = "correct horse battery"
	salt := []byte("0123456789abcdef")
	tests := []struct {
		name      string
		hash      string
		wantStale bool
	}{
		{"current parameters", phcOf(pw, argonMemory, argonTime, argonThreads, salt, argonKeyLen), false},
		{"less memory", phcOf(pw, 8*1024, argonTime, argonThreads, salt, argonKeyLen), true},
		{"more memory", phcOf(pw, 20*1024, argonTime, argonThreads, salt, argonKeyLen), true},
		{"one pass", phcOf(pw, argonMemory, 1, argonThreads, salt, argonKeyLen), true},
		{"two lanes", phcOf(pw, argonMemory, argonTime, 2, salt, argonKeyLen), true},
		{"shorter key", phcOf(pw, argonMemory, argonTime, argonThreads, salt, 16), true},
		{"short salt", phcOf(pw, argonMemory, argonTime, argonThreads, salt[:8], argonKeyLen), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ok, stale, err := VerifyPassword(tc.hash, pw)
			if err != nil || !ok || stale != tc.wantStale {
				t.Errorf("VerifyPassword(%q, right) = %v, %v, %v; want true, %v, nil", tc.hash, ok, stale, err, tc.wantStale)
			}
			ok, _, err = VerifyPassword(tc.hash, pw+"!")
			if err != nil || ok {
				t.Errorf("VerifyPassword(%q, wrong) = %v, %v; want false, nil", tc.hash, ok, err)
			}
		})
	}
}

func TestParsePHCRefuses(t *testing.T) {
	t.Parallel()
	salt, key := b64.EncodeToString([]byte("0123456789abcdef")), b64.EncodeToString(make([]byte, 32))
	phc := func(v, params, salt, key string) string {
		return "$argon2id$" + v + "$" + params + "$" + salt + "$" + key
	}
	good := phc("v=19", "m=19456,t=2,p=1", salt, key)
	if _, err := parsePHC(good); err != nil {
		t.Fatalf("parsePHC(%q) = %v, want success", good, err)
	}
	tests := []struct {
		name string
		hash string
	}{
		{"empty", ""},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i", "$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + key},
		{"argon2d", "$argon2d$v=19$m=19456,t=2,p=1$" + salt + "$" + key},
		{"no leading dollar", good[1:]},
		{"missing key", "$argon2id$v=19$m=19456,t=2,p=1$" + salt},
		{"extra field", good + "$x"},
		{"version 16", phc("v=16", "m=19456,t=2,p=1", salt, key)},
		{"no version", phc("19", "m=19456,t=2,p=1", salt, key)},
		{"parameters swapped", phc("v=19", "t=2,m=19456,p=1", salt, key)},
		{"parameters missing", phc("v=19", "m=19456,t=2", salt, key)},
		{"negative memory", phc("v=19", "m=-1,t=2,p=1", salt, key)},
		{"memory too small", phc("v=19", "m=8191,t=2,p=1", salt, key)},
		{"memory too large", phc("v=19", "m=1048577,t=2,p=1", salt, key)},
		{"memory overflows", phc("v=19", "m=4294967296,t=2,p=1", salt, key)},
		{"no passes", phc("v=19", "m=19456,t=0,p=1", salt, key)},
		{"too many passes", phc("v=19", "m=19456,t=11,p=1", salt, key)},
		{"no lanes", phc("v=19", "m=19456,t=2,p=0", salt, key)},
		{"lanes overflow", phc("v=19", "m=19456,t=2,p=256", salt, key)},
		{"salt not base64", phc("v=19", "m=19456,t=2,p=1", "!!!!", key)},
		{"salt padded", phc("v=19", "m=19456,t=2,p=1", salt+"==", key)},
		{"salt too short", phc("v=19", "m=19456,t=2,p=1", b64.EncodeToString([]byte("1234567")), key)},
		{"hash not base64", phc("v=19", "m=19456,t=2,p=1", salt, "~~~~")},
		{"hash too short", phc("v=19", "m=19456,t=2,p=1", salt, b64.EncodeToString(make([]byte, 15)))},
		{"hash too long", phc("v=19", "m=19456,t=2,p=1", salt, b64.EncodeToString(make([]byte, 65)))},
		{"empty hash", phc("v=19", "m=19456,t=2,p=1", salt, "")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if p, err := parsePHC(tc.hash); err == nil {
				t.Errorf("parsePHC(%q) = %+v, want an error", tc.hash, p)
			}
			ok, stale, err := VerifyPassword(tc.hash, "correct horse battery")
			if err == nil || ok || stale {
				t.Errorf("VerifyPassword(%q, …) = %v, %v, %v; want false, false, an error", tc.hash, ok, stale, err)
			}
		})
	}
}

// FuzzParsePHC checks that no stored hash, however broken, makes
// parsePHC or VerifyPassword panic, and that what parses is in range.
func FuzzParsePHC(f *testing.F) {
	salt, key := b64.EncodeToString([]byte("0123456789abcdef")), b64.EncodeToString(make([]byte, 32))
	for _, s := range []string{
		"",
		"$",
		"$$$$$",
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=8192,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=8192,t=1,p=255$" + salt + "$" + key,
		"$argon2id$v=19$m=0,t=0,p=0$$",
		"$argon2id$v=19$m=-1,t=-1,p=-1$" + salt + "$" + key,
		"$argon2id$v=19$m=99999999999999999999,t=2,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=%d,t=%d,p=%d$" + salt + "$" + key,
		"$argon2id$v=19$m=19456,t=2,p=1$====$====",
		"$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + key,
	} {
		f.Add(s, "correct horse battery")
	}
	f.Fuzz(func(t *testing.T, hash, password string) {
		p, err := parsePHC(hash)
		if err != nil {
			ok, stale, verr := VerifyPassword(hash, password)
			if verr == nil || ok || stale {
				t.Fatalf("VerifyPassword(%q, %q) = %v, %v, %v after parsePHC = %v; want false, false, an error", hash, password, ok, stale, verr, err)
			}
			return
		}
		if p.memory < 8*1024 || p.memory > 1024*1024 || p.time < 1 || p.time > 10 || p.threads < 1 ||
			len(p.salt) < 8 || len(p.key) < 16 || len(p.key) > 64 {
			t.Fatalf("parsePHC(%q) = %+v, which is out of range", hash, p)
		}
		// Hashing with what parses is safe, but only cheap parameters
		// keep the fuzzer fast.
		if p.memory > 16*1024 || p.time > 2 || p.threads > 4 {
			return
		}
		if _, _, err := VerifyPassword(hash, password); err != nil {
			t.Fatalf("VerifyPassword(%q, %q) = %v after parsePHC succeeded", hash, password, err)
		}
	})
}
