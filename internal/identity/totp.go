package identity

import (
	"bytes"
	"crypto/subtle"
	"fmt"
	"image/png"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// TOTP parameters: RFC 6238 defaults that every authenticator app reads.
const (
	totpPeriod = 30
	totpDigits = otp.DigitsSix
	totpSkew   = 1 // steps accepted either side of now, for clock drift
)

// Enrolment is what a user scans into an authenticator app.
type Enrolment struct {
	URI    string // otpauth://totp/...
	Secret string // base32, for typing in by hand
	QR     []byte // PNG of URI
}

func newTOTP(issuer, account string) (Enrolment, error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: account, Period: totpPeriod, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return Enrolment{}, fmt.Errorf("generating TOTP secret: %w", err)
	}
	img, err := key.Image(256, 256)
	if err != nil {
		return Enrolment{}, fmt.Errorf("drawing TOTP QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return Enrolment{}, fmt.Errorf("encoding TOTP QR code: %w", err)
	}
	return Enrolment{URI: key.URL(), Secret: key.Secret(), QR: buf.Bytes()}, nil
}

// matchTOTP returns the time step whose code equals code, within the skew
// around now, or -1. Every candidate is compared, in constant time.
func matchTOTP(secret, code string, now time.Time) (int64, error) {
	if len(code) != int(totpDigits) {
		return -1, nil
	}
	step := now.Unix() / totpPeriod
	found := int64(-1)
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		s := step + d
		want, err := totp.GenerateCodeCustom(secret, time.Unix(s*totpPeriod, 0), totp.ValidateOpts{Period: totpPeriod, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			return -1, fmt.Errorf("computing TOTP code: %w", err)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && found < 0 {
			found = s
		}
	}
	return found, nil
}

// TOTPCode returns the code of secret at t: for tests and for the
// enrolment page's self-check.
func TOTPCode(secret string, t time.Time) (string, error) {
	return totp.GenerateCodeCustom(secret, t, totp.ValidateOpts{Period: totpPeriod, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
}
