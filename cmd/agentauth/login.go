package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"time"

	"github.com/agentauth/agentauth/login"
)

const loginSynopsis = `agentauth login [--device-auth] [--no-browser] [--codex-home DIR] [--timeout D]

Signs in to ChatGPT without the Codex CLI and writes $CODEX_HOME/auth.json
as Codex writes it, so Codex and agentauth share the login. The flows:

  browser (default)  opens the authorize URL (PKCE S256, state check) and
                     waits for the redirect on 127.0.0.1:1455
                     (--no-browser only prints the URL)
  --device-auth      prints a URL and a one-time code to enter on any
                     device; for headless servers
  agentauth logout   revokes the login's token and removes the login
                     from auth.json (docs/logout.md)
  workload identity  no login: set OPENAI_IDENTITY_TOKEN_FILE and
                     OPENAI_FEDERATION_RULE_ID (docs/workload-identity.md)

Tokens are never printed. See docs/login.md.`

func init() {
	register(command{
		name:    "login",
		summary: "sign in to ChatGPT (browser with PKCE, or --device-auth) and write auth.json",
		run:     runLogin,
	})
}

func runLogin(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("login")
	device := fs.Bool("device-auth", false, "sign in with a device code instead of a browser on this machine")
	noBrowser := fs.Bool("no-browser", false, "print the authorize URL instead of opening a browser")
	home := fs.String("codex-home", "", "directory holding auth.json (default: $CODEX_HOME, else ~/.codex)")
	issuer := fs.String("experimental_issuer", "", "OAuth issuer base URL, as Codex's flag (default: https://auth.openai.com)")
	clientID := fs.String("experimental_client-id", "", "OAuth client id, as Codex's flag (default: $CODEX_APP_SERVER_LOGIN_CLIENT_ID, else Codex's)")
	port := fs.Int("port", 0, "loopback port of the browser flow's callback server (default 1455, falling back to 1457)")
	timeout := fs.Duration("timeout", 15*time.Minute, "give up when the sign-in is not finished within this time")
	if code, done := parseFlags(fs, loginSynopsis, args, stdout, stderr); done {
		return code
	}
	if *timeout <= 0 {
		return usageError(stderr, fs.Name(), errors.New("--timeout must be positive"))
	}
	if *port < 0 || *port > 65535 {
		return usageError(stderr, fs.Name(), errors.New("--port must be between 0 and 65535"))
	}
	if *device && *noBrowser {
		return usageError(stderr, fs.Name(), errors.New("--no-browser applies to the browser flow, not --device-auth"))
	}
	opts := login.Options{CodexHome: *home, Issuer: *issuer, ClientID: *clientID, Port: *port, Out: stdout}
	if !*device && !*noBrowser {
		opts.OpenBrowser = openBrowser
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var err error
	if *device {
		err = login.DeviceCode(ctx, opts)
	} else {
		err = login.Browser(ctx, opts)
	}
	if err != nil {
		return failure(stderr, fs.Name(), err)
	}
	fmt.Fprintln(stdout, "Signed in; the login is saved in auth.json.")
	return exitOK
}

// openBrowser starts the platform's opener on url and does not wait for
// it: some openers (xdg-open with a terminal browser) return only when the
// browser exits, and the login must go on meanwhile. The opener is reaped
// in the background; the process exits after the login anyway.
func openBrowser(url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return nil
}
