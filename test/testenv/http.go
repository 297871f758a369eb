package testenv

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// httpDo makes a request and returns "STATUS body".
func httpDo(ctx context.Context, method, url string, body io.Reader, contentType string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return "", err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	out := fmt.Sprintf("%d %s", resp.StatusCode, b)
	if err == nil && resp.StatusCode >= 300 {
		err = fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return out, err
}
