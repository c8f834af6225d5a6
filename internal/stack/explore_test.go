package stack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"noops/internal/image"
)

func TestExplore(t *testing.T) {
	if os.Getenv("EXPLORE") == "" {
		t.Skip()
	}
	dir := os.Getenv("EXPLORE_DIR")
	s, err := image.Open(filepath.Join(dir, "images"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Open(Options{Dir: filepath.Join(dir, "stacks"), Images: s})
	if err != nil {
		t.Fatal(err)
	}
	for _, round := range []string{"first", "second"} {
		for _, n := range strings.Split(os.Getenv("EXPLORE"), ",") {
			start := time.Now()
			info, err := m.Build(context.Background(), n, os.Stdout)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Printf("RESULT %s %s build: %s run %d bytes build %d bytes\n", round, n, time.Since(start).Round(100*time.Millisecond), info.Run.Size, info.Build.Size)
		}
	}
}
