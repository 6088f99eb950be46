// Package web holds the files callctl serves to browsers at /: the
// supervisor console (index.html, console.js, console.css) and the
// JavaScript SDK under sdk/. They are embedded in the binary, so serving
// them needs nothing on disk; none needs a build step.
package web

import (
	"embed"
	"io/fs"
)

//go:embed index.html console.js console.css sdk
var files embed.FS

// FS is the web root: index.html (the console), console.js, console.css,
// sdk/callctl.js, sdk/callctl.d.ts, …
func FS() fs.FS { return files }
