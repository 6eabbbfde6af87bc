// The Bazar test collector: an OpenTelemetry Collector distribution with only what the tests use
// (receiver otlp; processor batch; exporters file and debug). Hand-maintained in the shape the
// OpenTelemetry Collector Builder (ocb, go.opentelemetry.io/collector/cmd/builder) generates: this
// main.go and components.go, without ocb's Windows-service file. Built by scripts/otelcol.sh, which
// also owns go.mod and go.sum (--regen rewrites them from its pins).

// Program otelcol is an OpenTelemetry Collector binary.
package main

import (
	"os"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	envprovider "go.opentelemetry.io/collector/confmap/provider/envprovider"
	fileprovider "go.opentelemetry.io/collector/confmap/provider/fileprovider"
	yamlprovider "go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/otelcol"
)

// version is stamped by scripts/otelcol.sh (-X main.version=<core version>).
var version = "dev"

func main() {
	info := component.BuildInfo{
		Command:     "otelcol",
		Description: "Bazar test OpenTelemetry Collector (otlp, batch, file, debug)",
		Version:     version,
	}

	set := otelcol.CollectorSettings{
		BuildInfo: info,
		Factories: components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				ProviderFactories: []confmap.ProviderFactory{
					envprovider.NewFactory(),
					fileprovider.NewFactory(),
					yamlprovider.NewFactory(),
				},
			},
		},
		ProviderModules: map[string]string{
			envprovider.NewFactory().Create(confmap.ProviderSettings{}).Scheme():  "go.opentelemetry.io/collector/confmap/provider/envprovider",
			fileprovider.NewFactory().Create(confmap.ProviderSettings{}).Scheme(): "go.opentelemetry.io/collector/confmap/provider/fileprovider",
			yamlprovider.NewFactory().Create(confmap.ProviderSettings{}).Scheme(): "go.opentelemetry.io/collector/confmap/provider/yamlprovider",
		},
		ConverterModules: []string{},
	}

	if err := runInteractive(set); err != nil {
		// The error message is logged by cobra, so we intentionally
		// avoid logging it again here to prevent duplicate output.
		os.Exit(1)
	}
}

func runInteractive(params otelcol.CollectorSettings) error {
	cmd := otelcol.NewCommand(params)
	if err := cmd.Execute(); err != nil {
		return err
	}

	return nil
}
