// Command sgctl is sessiongate's user CLI; installed as kubectl-sessiongate it
// is also the kubectl plugin `kubectl sessiongate`.
package main

import (
	"fmt"
	"os"

	"sessiongate.dev/sessiongate/internal/sgctl"
)

func main() {
	if err := sgctl.NewCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
