//go:build ignore

// Run by go:generate (see seccomp.go): writes seccomp.json, Docker's default
// seccomp profile as github.com/moby/profiles/seccomp defines it.

package main

import (
	"encoding/json"
	"log"
	"os"

	"github.com/moby/profiles/seccomp"
)

func main() {
	b, err := json.MarshalIndent(seccomp.DefaultProfile(), "", "\t")
	if err != nil {
		log.Fatalf("encoding the default seccomp profile: %v", err)
	}
	if err := os.WriteFile("seccomp.json", append(b, '\n'), 0o644); err != nil {
		log.Fatalf("writing seccomp.json: %v", err)
	}
}
