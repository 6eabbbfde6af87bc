// The skaffold binary, built by scripts/skaffold.sh (which also owns go.mod and go.sum: --regen rewrites
// them from its pin). skaffold's own main package (cmd/skaffold/skaffold.go) cannot be imported, so this
// is its main function and nothing else: the lines below are copied from it (Apache-2.0, Copyright 2019
// The Skaffold Authors), without its opt-in Cloud Profiler hook (SKAFFOLD_PROFILER, for skaffold's own
// developers). No other source of skaffold is copied: everything else is the module itself.

// Program skaffold is skaffold's command line.
package main

import (
	"context"
	"errors"
	"os"

	"github.com/GoogleContainerTools/skaffold/v2/cmd/skaffold/app"
	"github.com/GoogleContainerTools/skaffold/v2/pkg/skaffold/instrumentation"
)

func main() {
	var code int
	if err := app.Run(os.Stdout, os.Stderr); err != nil && !errors.Is(err, context.Canceled) {
		// ignore cancelled errors
		code = app.ExitCode(err)
	}
	instrumentation.ShutdownAndFlush(context.Background(), code)
	os.Exit(code)
}
