// Package web holds the files callctl serves to browsers: the JavaScript
// SDK under sdk/ (and, later, the supervisor console). They are embedded in
// the binary, so serving them needs nothing on disk.
package web

import (
	"embed"
	"io/fs"
)

//go:embed sdk
var files embed.FS

// FS is the web root: sdk/callctl.js, sdk/callctl.d.ts, …
func FS() fs.FS { return files }
