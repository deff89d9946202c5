// Command sessiongate runs the just-in-time access gateway.
package main

import (
	"os"

	"k8s.io/component-base/cli"
)

func main() {
	os.Exit(cli.Run(newRootCommand()))
}
