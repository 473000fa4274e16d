package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/hookline/hookline/delivery"
)

var versionCommand = &command{
	name:    "version",
	summary: "print hookline's version",
	usage: `Usage: hookline version

Prints the version of the hookline library the command was built with, the
module version when installed with go install, and the Go version.
`,
}

func init() { versionCommand.run = runVersion }

func runVersion(c *cli, args []string) int {
	cmd := versionCommand
	rest, err := c.parse(cmd, newFlagSet(cmd.name), args)
	if err != nil {
		return exitFor(err)
	}
	if len(rest) > 0 {
		return c.usageError(cmd, "unexpected argument %q", rest[0])
	}
	module := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		module = bi.Main.Version
	}
	fmt.Fprintf(c.stdout, "hookline %s (module %s, %s %s/%s)\n", delivery.Version, module, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return 0
}
