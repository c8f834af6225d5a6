package identity

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"noops/internal/errkind"
)

// Argon2id parameters: OWASP's recommendation of 19 MiB, two passes, one
// lane. A stored hash carries its own parameters, so raising these later
// keeps old hashes valid (they are upgraded at the next sign-in).
const (
	argonMemory  = 19 * 1024 // KiB
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16

	MinPasswordLen = 10
	MaxPasswordLen = 256 // argon2 reads it all: bound the work a request can ask for
)

var b64 = base64.RawStdEncoding

// HashPassword returns the PHC string of an argon2id hash of password.
func HashPassword(password string) (string, error) {
	if err := CheckPassword(password); err != nil {
		return "", err
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("choosing salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// CheckPassword refuses passwords that are too short or too long.
func CheckPassword(password string) error {
	n := utf8.RuneCountInString(password)
	switch {
	case n < MinPasswordLen:
		return errkind.Errorf(errkind.Invalid, "the password has %d characters: use at least %d", n, MinPasswordLen)
	case len(password) > MaxPasswordLen:
		return errkind.Errorf(errkind.Invalid, "the password is longer than %d bytes", MaxPasswordLen)
	}
	return nil
}

// phc is a decoded argon2id PHC string.
type phc struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

func parsePHC(s string) (phc, error) {
	var p phc
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, fmt.Errorf("not an argon2id hash")
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, fmt.Errorf("argon2 version %q is not %d", parts[2], argon2.Version)
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &p.threads); err != nil {
		return p, fmt.Errorf("argon2 parameters %q: %w", parts[3], err)
	}
	if p.memory < 8*1024 || p.memory > 1024*1024 || p.time < 1 || p.time > 10 || p.threads < 1 {
		return p, fmt.Errorf("argon2 parameters %q are out of range", parts[3])
	}
	var err error
	if p.salt, err = b64.DecodeString(parts[4]); err != nil || len(p.salt) < 8 {
		return p, fmt.Errorf("argon2 salt is malformed")
	}
	if p.key, err = b64.DecodeString(parts[5]); err != nil || len(p.key) < 16 || len(p.key) > 64 {
		return p, fmt.Errorf("argon2 hash is malformed")
	}
	return p, nil
}

// VerifyPassword reports whether password matches the PHC hash, in time
// that does not depend on where they differ. A malformed hash is an error.
// stale reports that the hash uses older parameters than HashPassword's.
func VerifyPassword(hash, password string) (ok, stale bool, err error) {
	p, err := parsePHC(hash)
	if err != nil {
		return false, false, err
	}
	if len(password) > MaxPasswordLen {
		return false, false, nil
	}
	key := argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	ok = subtle.ConstantTimeCompare(key, p.key) == 1
	stale = p.memory != argonMemory || p.time != argonTime || p.threads != argonThreads || len(p.key) != argonKeyLen
	return ok, stale, nil
}

// dummyHash is compared against when a user does not exist, so that an
// unknown name costs the same time as a wrong password.
var dummyHash = func() string {
	h, _ := HashPassword("not a password, only a timing decoy")
	return h
}()
