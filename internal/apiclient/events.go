package apiclient

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"noops/internal/apitype"
)

// Publish publishes an event to a topic.
func (c *Client) Publish(ctx context.Context, topic string, req apitype.PublishRequest) (apitype.PublishResult, error) {
	var out apitype.PublishResult
	return out, c.sendJSON(ctx, http.MethodPost, "/v1/topics/"+url.PathEscape(topic)+"/events", req, &out)
}

// DeadLetters lists an app's dead letters.
func (c *Client) DeadLetters(ctx context.Context, app string) ([]apitype.DeadLetter, error) {
	var out []apitype.DeadLetter
	return out, c.getJSON(ctx, "/v1/apps/"+url.PathEscape(app)+"/dlq", &out)
}

// DeadLetter shows one dead letter.
func (c *Client) DeadLetter(ctx context.Context, app string, seq uint64) (apitype.DeadLetter, error) {
	var out apitype.DeadLetter
	return out, c.getJSON(ctx, fmt.Sprintf("/v1/apps/%s/dlq/%d", url.PathEscape(app), seq), &out)
}

// Replay sends dead letters back to their app.
func (c *Client) Replay(ctx context.Context, app string, req apitype.ReplayRequest) (apitype.ReplayResult, error) {
	var out apitype.ReplayResult
	return out, c.sendJSON(ctx, http.MethodPost, "/v1/apps/"+url.PathEscape(app)+"/dlq/replay", req, &out)
}

// Invoke invokes an app, synchronously or not.
func (c *Client) Invoke(ctx context.Context, app string, req apitype.InvokeRequest) (apitype.InvokeResult, error) {
	var out apitype.InvokeResult
	return out, c.sendJSON(ctx, http.MethodPost, "/v1/apps/"+url.PathEscape(app)+"/invoke", req, &out)
}

// Invocation shows an asynchronous invocation.
func (c *Client) Invocation(ctx context.Context, id string) (apitype.Invocation, error) {
	var out apitype.Invocation
	return out, c.getJSON(ctx, "/v1/invocations/"+url.PathEscape(id), &out)
}

// CancelInvocation cancels an asynchronous invocation.
func (c *Client) CancelInvocation(ctx context.Context, id string) (apitype.Invocation, error) {
	var out apitype.Invocation
	return out, c.sendJSON(ctx, http.MethodPost, "/v1/invocations/"+url.PathEscape(id)+"/cancel", struct{}{}, &out)
}
