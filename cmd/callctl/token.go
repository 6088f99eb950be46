package main

import (
	"fmt"
	"io"

	"github.com/callctl/callctl/internal/auth"
)

// tokenCmd runs `callctl token new`: a new API token and the token_hash
// that the configuration stores in its place.
func tokenCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || args[0] != "new" {
		if len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprintln(stdout, "Usage: callctl token new\n\nPrint a new API token and the token_hash line for the client's entry in the configuration.")
			return exitOK
		}
		fmt.Fprintf(stderr, "callctl: token needs the subcommand new, got %q\nusage: callctl token new\n", args)
		return exitUsage
	}
	token, hash, err := auth.NewToken()
	if err != nil {
		fmt.Fprintf(stderr, "callctl: making a token: %v\n", err)
		return exitRuntime
	}
	fmt.Fprintf(stdout, `token: %s

Paste this line into the client's entry under clients: in the configuration:

    token_hash: "%s"

The token is shown once: callctl keeps only its hash, so store it now
(for example as CALLCTL_TOKEN for the callctl client commands).
`, token, hash)
	return exitOK
}
