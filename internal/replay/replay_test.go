package replay

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPossibleAndBody(t *testing.T) {
	get, _ := http.NewRequest(http.MethodGet, "https://example.test/", nil)
	withCopy, _ := http.NewRequest(http.MethodPost, "https://example.test/", strings.NewReader("abc")) // sets GetBody
	once, _ := http.NewRequest(http.MethodPost, "https://example.test/", io.NopCloser(strings.NewReader("abc")))
	if !Possible(get) || !Possible(withCopy) || Possible(once) {
		t.Fatalf("Possible: get %v, with GetBody %v, one-shot body %v; want true, true, false", Possible(get), Possible(withCopy), Possible(once))
	}
	if b, err := Body(get); err != nil || b != nil {
		t.Errorf("Body of a GET: %v, %v; want nil, nil", b, err)
	}
	b, err := Body(withCopy)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(b); string(got) != "abc" {
		t.Errorf("Body gave %q, want a fresh copy \"abc\"", got)
	}
}
