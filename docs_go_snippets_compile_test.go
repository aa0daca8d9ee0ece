package agentauth_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/scanner"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// Every ```go block of README.md and docs/*.md is checked in one of two
// ways:
//
//   - by default it is compiled, pasted as it stands into the body of a
//     function returning error (so it may `return err`), with the imports
//     its package names need. A snippet that declares a variable it does not
//     use, or names a field or function that does not exist, fails.
//   - a block preceded by the line `<!-- go snippet from FILE FUNC -->`
//     (FILE relative to the repository root) is an excerpt of an example
//     that compiles and runs in its own module's tests: used for the
//     nested modules (redisstore, otelauth, interop), whose dependencies
//     the core module does not have, and for excerpts that use a variable
//     the example declares. Each non-blank line of the block, trimmed,
//     must be a line of FUNC, in the same order.
//
// The compiled snippets are built by `go build` with an overlay, into a
// package that exists only in the overlay: nothing is written to the
// repository.

// snippetPackages are the packages a compiled snippet may name, by the
// name it uses: the public packages only, so a snippet that names a
// package under internal/ (which a user cannot import) does not compile.
var snippetPackages = map[string]string{
	"featureflag":   "github.com/agentauth/agentauth/featureflag",
	"identitytest":  "github.com/agentauth/agentauth/identitytest",
	"login":         "github.com/agentauth/agentauth/login",
	"pool":          "github.com/agentauth/agentauth/pool",
	"processtask":   "github.com/agentauth/agentauth/processtask",
	"usage":         "github.com/agentauth/agentauth/usage",
	"resolver":      "github.com/agentauth/agentauth/resolver",
	"transport":     "github.com/agentauth/agentauth/transport",
	"retryablehttp": "github.com/hashicorp/go-retryablehttp",
	"context":       "context",
	"errors":        "errors",
	"fmt":           "fmt",
	"http":          "net/http",
	"io":            "io",
	"json":          "encoding/json",
	"log":           "log",
	"os":            "os",
	"slog":          "log/slog",
	"strings":       "strings",
	"time":          "time",
}

type goSnippet struct {
	file string // relative to the repository root
	line int    // of the first line of code
	code string
	from string // "FILE FUNC" of a mirrored excerpt; "" when compiled
}

var snippetMarker = regexp.MustCompile(`^<!-- go snippet from (\S+) (\S+) -->$`)

// docSnippets returns the ```go blocks of README.md and docs/*.md.
func docSnippets(t *testing.T) []goSnippet {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{"README.md"}, files...)
	var out []goSnippet
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var cur *goSnippet
		var code strings.Builder
		prev := "" // the last non-blank line outside a block
		sc := bufio.NewScanner(bytes.NewReader(data))
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			switch {
			case cur == nil && strings.TrimSpace(line) == "```go":
				cur = &goSnippet{file: filepath.ToSlash(name), line: n + 1}
				if m := snippetMarker.FindStringSubmatch(strings.TrimSpace(prev)); m != nil {
					cur.from = m[1] + " " + m[2]
				}
				code.Reset()
			case cur != nil && strings.TrimSpace(line) == "```":
				cur.code = code.String()
				out = append(out, *cur)
				cur = nil
			case cur != nil:
				code.WriteString(line + "\n")
			case strings.TrimSpace(line) != "":
				prev = line
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		if cur != nil {
			t.Fatalf("%s:%d: unterminated ```go block", name, cur.line)
		}
	}
	return out
}

func TestDocsGoSnippetsCompile(t *testing.T) {
	snippets := docSnippets(t)
	var compiled []goSnippet
	readme := 0
	for _, s := range snippets {
		if s.from != "" {
			checkMirror(t, s)
			continue
		}
		compiled = append(compiled, s)
		if s.file == "README.md" {
			readme++
		}
	}
	// The three common cases of the README are compiled, not mirrored.
	if readme < 3 {
		t.Errorf("README.md has %d compiled Go snippets, want at least 3", readme)
	}
	if len(compiled) == 0 {
		return
	}
	buildSnippets(t, compiled)
}

// buildSnippets compiles every snippet into one overlay package.
func buildSnippets(t *testing.T, snippets []goSnippet) {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to compile the snippets with")
	}
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	pkgDir := filepath.Join(root, "internal", "docsnippetscheck")
	tmp := t.TempDir()
	overlay := map[string]map[string]string{"Replace": {}}
	for i, s := range snippets {
		src, err := snippetSource(s, i, filepath.Join(root, filepath.FromSlash(s.file)))
		if err != nil {
			t.Errorf("%s:%d: %v", s.file, s.line, err)
			continue
		}
		real := filepath.Join(tmp, fmt.Sprintf("snippet%d.go", i))
		if err := os.WriteFile(real, src, 0o600); err != nil {
			t.Fatal(err)
		}
		overlay["Replace"][filepath.Join(pkgDir, fmt.Sprintf("snippet%d.go", i))] = real
	}
	ov, _ := json.Marshal(overlay)
	ovPath := filepath.Join(tmp, "overlay.json")
	if err := os.WriteFile(ovPath, ov, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "build", "-overlay", ovPath, "./internal/docsnippetscheck")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the Go snippets of the docs do not compile (%v):\n%s", err, out)
	}
}

// snippetSource wraps one snippet in a function, with a //line directive
// so that compile errors name the Markdown file and line.
func snippetSource(s goSnippet, i int, mdPath string) ([]byte, error) {
	names, err := packagesNamed(s.code)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("package docsnippetscheck\n\n")
	for _, n := range names {
		fmt.Fprintf(&b, "import %s %q\n", n, snippetPackages[n])
	}
	fmt.Fprintf(&b, "\nfunc snippet%d() error {\n//line %s:%d\n%s\n\treturn nil\n}\n", i, mdPath, s.line, s.code)
	return b.Bytes(), nil
}

// packagesNamed returns the known package names the code qualifies an
// identifier with (NAME.X where NAME is not itself after a dot), sorted.
func packagesNamed(code string) ([]string, error) {
	fset := token.NewFileSet()
	src := []byte(code)
	var sc scanner.Scanner
	var scanErr error
	sc.Init(fset.AddFile("snippet", -1, len(src)), src, func(_ token.Position, msg string) { scanErr = fmt.Errorf("%s", msg) }, 0)
	seen := map[string]bool{}
	prevTok, prevLit := token.ILLEGAL, ""
	beforePrev := token.ILLEGAL
	for {
		_, tok, lit := sc.Scan()
		if tok == token.EOF {
			break
		}
		if tok == token.PERIOD && prevTok == token.IDENT && beforePrev != token.PERIOD {
			if _, ok := snippetPackages[prevLit]; ok {
				seen[prevLit] = true
			}
		}
		beforePrev, prevTok, prevLit = prevTok, tok, lit
	}
	if scanErr != nil {
		return nil, scanErr
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// checkMirror checks that a marked excerpt's lines are lines of the
// example it names, in order.
func checkMirror(t *testing.T, s goSnippet) {
	t.Helper()
	file, fn, _ := strings.Cut(s.from, " ")
	data, err := os.ReadFile(filepath.FromSlash(file))
	if err != nil {
		t.Errorf("%s:%d: the snippet names %s: %v", s.file, s.line, file, err)
		return
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, data, 0)
	if err != nil {
		t.Errorf("%s:%d: %v", s.file, s.line, err)
		return
	}
	var body []string
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == fn && fd.Body != nil {
			src := data[fset.Position(fd.Body.Pos()).Offset:fset.Position(fd.Body.End()).Offset]
			for _, l := range strings.Split(string(src), "\n") {
				body = append(body, strings.TrimSpace(l))
			}
		}
	}
	if body == nil {
		t.Errorf("%s:%d: the snippet names %s in %s, which has no such function", s.file, s.line, fn, file)
		return
	}
	at := 0
	for i, l := range strings.Split(s.code, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		for at < len(body) && body[at] != l {
			at++
		}
		if at == len(body) {
			t.Errorf("%s:%d: this line is not in %s of %s (after the lines before it): %s", s.file, s.line+i, fn, file, l)
			return
		}
		at++
	}
}
