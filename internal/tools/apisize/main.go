// Command apisize measures the public surface of the root module the way
// the design goals are stated: for each public package (everything not
// under internal/, cmd/ or a nested module, and not the test server
// identitytest), the lines of `go doc -short` and the exported
// identifiers of its non-test files (types, funcs, vars, consts, methods,
// exported struct fields and interface methods; an alias counts once).
//
//	go run ./internal/tools/apisize
package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func main() {
	out, err := exec.Command("go", "list", "-f", "{{.Dir}}\t{{.ImportPath}}\t{{.Name}}", "./...").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "apisize: go list:", err)
		os.Exit(1)
	}
	var lines, idents int
	fmt.Printf("%-14s %9s %11s\n", "package", "doc lines", "identifiers")
	for _, row := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(row, "\t")
		dir, path, name := f[0], f[1], f[2]
		rel := strings.TrimPrefix(strings.TrimPrefix(path, "github.com/agentauth/agentauth"), "/")
		if name == "main" || strings.Contains(path, "/internal/") || strings.HasPrefix(rel, "internal") || rel == "identitytest" || strings.HasSuffix(rel, "_test") {
			continue
		}
		if rel == "" {
			rel = "agentauth"
		}
		doc, err := exec.Command("go", "doc", "-short", dir).Output()
		if err != nil {
			fmt.Fprintln(os.Stderr, "apisize: go doc:", path, err)
			os.Exit(1)
		}
		l := bytes.Count(doc, []byte("\n"))
		n := count(dir)
		fmt.Printf("%-14s %9d %11d\n", rel, l, n)
		lines += l
		idents += n
	}
	fmt.Printf("%-14s %9d %11d\n", "total", lines, idents)
}

// count returns the exported identifiers of the non-test files in dir.
func count(dir string) int {
	fs := token.NewFileSet()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "apisize:", dir, err)
		os.Exit(1)
	}
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fs, name, nil, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, "apisize:", err)
			os.Exit(1)
		}
		files = append(files, f)
	}
	n := 0
	for _, f := range files {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() {
					continue
				}
				if d.Recv != nil {
					t := d.Recv.List[0].Type
					if s, ok := t.(*ast.StarExpr); ok {
						t = s.X
					}
					if ix, ok := t.(*ast.IndexExpr); ok {
						t = ix.X
					}
					if id, ok := t.(*ast.Ident); ok && !id.IsExported() {
						continue
					}
				}
				n++
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if !s.Name.IsExported() {
							continue
						}
						n++
						switch t := s.Type.(type) {
						case *ast.StructType:
							for _, fl := range t.Fields.List {
								for _, nm := range fl.Names {
									if nm.IsExported() {
										n++
									}
								}
							}
						case *ast.InterfaceType:
							for _, fl := range t.Methods.List {
								for _, nm := range fl.Names {
									if nm.IsExported() {
										n++
									}
								}
							}
						}
					case *ast.ValueSpec:
						for _, nm := range s.Names {
							if nm.IsExported() {
								n++
							}
						}
					}
				}
			}
		}
	}
	return n
}
