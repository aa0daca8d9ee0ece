package identity

import (
	"bytes"
	"fmt"
	"log/slog"
)

// fmtAll renders v with every fmt verb and through slog's text and JSON
// handlers, for tests that search the output for secrets.
func fmtAll(v any) []string {
	out := []string{
		fmt.Sprintf("%v", v), fmt.Sprintf("%+v", v), fmt.Sprintf("%#v", v),
		fmt.Sprintf("%s", v), fmt.Sprintf("%x", v), fmt.Sprintf("%q", v),
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("m", "v", v)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "v", v)
	return append(out, buf.String())
}
