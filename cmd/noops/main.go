// Command noops turns a folder of source code into a hardened, observed
// HTTPS service. See README.md.
package main

import (
	"os"

	"noops/internal/app"
	"noops/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], app.Serve)) }
