// Package interop shows, and proves in its tests, that the agentauth
// transport is a drop-in for model-provider clients: the official OpenAI Go
// SDK (option.WithHTTPClient), github.com/sashabaranov/go-openai
// (ClientConfig.HTTPClient) and WebSocket handshakes made with
// github.com/coder/websocket (DialOptions.HTTPClient), the way the Codex
// backend speaks the Responses API over WebSocket. It is a nested module
// with its own go.mod, so those SDKs and the WebSocket library never become
// dependencies of the agentauth module itself; its only exported code is
// [WebSocketEcho], the WebSocket half of the reference server, which
// identitytest cannot hold for the same reason.
package interop
