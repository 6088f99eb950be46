package pbx

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docs/architecture.md is a map for reading the code, so everything it
// names in backquotes must be there: each repository path (a file or
// directory under cmd/, internal/, test/, web/, bench/, docs/, configs/ or
// scripts/) must exist, each bare file name (`intake.go`) must be some
// file's name, and each Go name with a capital in it (`Session`,
// `Engine.HandleInvite`, `media.Connect`, `dtmf.Detector.Feed`) must be
// declared in the repository: a type, function, variable, constant, field
// or method, and for Type.Name a method or field of that type. Dotted names
// that are settings of configs/callctl.yaml (`sip.allow`) or privileges
// (`sessions.hold`), and names in capitals (the state `ERROR`), are not Go
// names. And every package under internal/ must
// be named, so a new package cannot be left out of the map.
func TestArchitectureDocNamesOnlyPathsAndNamesThatExist(t *testing.T) {
	data, err := os.ReadFile(repoPath(t, "docs/architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	keys := callctlKeys(t)
	names, members, files := goDeclarations(t)
	internal := map[string]bool{}
	dirs, err := os.ReadDir(repoPath(t, "internal"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if d.IsDir() {
			internal[d.Name()] = true
		}
	}

	repoDir := regexp.MustCompile(`^(cmd|internal|test|web|bench|docs|configs|scripts)/[A-Za-z0-9_./-]*$`)
	fileName := regexp.MustCompile(`^[A-Za-z0-9_-]+\.(go|md|json|js|ts|html|css|yaml|xml)$`)
	goName := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)
	privilege := regexp.MustCompile(`^sessions\.[a-z]+$|^audit\.view$|^config\.reload$`)
	hasCap := regexp.MustCompile(`[A-Z]`)
	allCaps := regexp.MustCompile(`^[A-Z0-9_]+$`) // a state (ERROR) or a SIP method
	checked := 0
	for _, m := range regexp.MustCompile("`([^`\n]+)`").FindAllStringSubmatch(doc, -1) {
		tok := m[1]
		switch {
		case repoDir.MatchString(tok):
			checked++
			if _, err := os.Stat(repoPath(t, strings.TrimSuffix(tok, "/"))); err != nil {
				t.Errorf("docs/architecture.md names %s, which does not exist", tok)
			}
		case fileName.MatchString(tok):
			checked++
			if !files[tok] {
				t.Errorf("docs/architecture.md names the file %s, which no directory of the repository has", tok)
			}
		case !goName.MatchString(tok) || keys[tok] || privilege.MatchString(tok) || !hasCap.MatchString(tok) || allCaps.MatchString(tok):
			// A command line, a setting, a privilege, a plain word, a state.
		default:
			parts := strings.Split(tok, ".")
			if len(parts) > 1 && internal[parts[0]] {
				parts = parts[1:] // media.Connect: a name of package media
			} else if len(parts) > 1 && strings.ToLower(parts[0]) == parts[0] && !names[parts[0]] {
				continue // another module's package (gosip.X, atomic.Pointer)
			}
			checked++
			switch len(parts) {
			case 1:
				if !names[parts[0]] {
					t.Errorf("docs/architecture.md names `%s`, which is declared nowhere in the repository", tok)
				}
			default:
				// Type.Member, or pkg.Type.Member with the package stripped.
				if !members[parts[len(parts)-2]+"."+parts[len(parts)-1]] {
					t.Errorf("docs/architecture.md names `%s`: %s has no method or field %s", tok, parts[len(parts)-2], parts[len(parts)-1])
				}
			}
		}
	}
	if checked < 100 {
		t.Errorf("docs/architecture.md: only %d names checked; the extraction is broken", checked)
	}
	for p := range internal {
		if !strings.Contains(doc, "`internal/"+p+"`") {
			t.Errorf("docs/architecture.md does not name `internal/%s`: every package belongs on the map", p)
		}
	}
}

// goDeclarations parses every Go file of the repository and returns the
// names declared at top level (types, functions, variables, constants),
// methods and struct fields by name, "Type.Member" for each method and
// field, and every file name in the repository.
func goDeclarations(t *testing.T) (names, members, files map[string]bool) {
	t.Helper()
	names, members, files = map[string]bool{}, map[string]bool{}, map[string]bool{}
	root := repoPath(t, ".")
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == ".git" || n == "testdata" || n == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		files[d.Name()] = true
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				names[d.Name.Name] = true
				if d.Recv != nil && len(d.Recv.List) == 1 {
					members[receiverType(d.Recv.List[0].Type)+"."+d.Name.Name] = true
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch s := spec.(type) {
					case *ast.TypeSpec:
						names[s.Name.Name] = true
						if st, ok := s.Type.(*ast.StructType); ok {
							for _, fld := range st.Fields.List {
								for _, n := range fld.Names {
									names[n.Name] = true
									members[s.Name.Name+"."+n.Name] = true
								}
							}
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							names[n.Name] = true
						}
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !names["Session"] || !members["Engine.HandleInvite"] {
		t.Fatalf("parsing the repository found no Session or Engine.HandleInvite: %d names", len(names))
	}
	return names, members, files
}

// receiverType is the type name of a method's receiver: T for t T, *T and
// T[K].
func receiverType(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}
