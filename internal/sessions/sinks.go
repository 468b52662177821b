package sessions

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

// queue is the non-blocking front of a sink: events wait in a bounded channel for the
// sink's goroutine; when it is full the event is dropped and counted, so a slow SIEM never
// slows down stats ingestion.
type queue struct {
	ch      chan Event
	dropped atomic.Uint64
}

func (q *queue) Send(e Event) {
	select {
	case q.ch <- e:
	default:
		q.dropped.Add(1)
	}
}

// Dropped returns how many events were dropped because the sink was behind.
func (q *queue) Dropped() uint64 { return q.dropped.Load() }

// FileSink appends events as JSON lines to a file (for a log shipper to pick up).
type FileSink struct {
	queue
	path string
	log  *slog.Logger
}

// NewFileSink returns a sink appending to path (created 0640 if missing).
func NewFileSink(path string, log *slog.Logger) *FileSink {
	if log == nil {
		log = slog.Default()
	}
	return &FileSink{queue: queue{ch: make(chan Event, 4096)}, path: path, log: log}
}

// Run writes queued events until ctx ends.
func (s *FileSink) Run(ctx context.Context) error {
	f, err := os.OpenFile(s.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("session events file: %w", err)
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-s.ch:
			if err := enc.Encode(e); err != nil {
				s.log.Error("write session event", "file", s.path, "err", err)
			}
		}
	}
}

// WebhookSink POSTs batches of events as application/x-ndjson to a URL, retrying with
// backoff; events queue (bounded) while the receiver is down.
type WebhookSink struct {
	queue
	url    string
	client *http.Client
	log    *slog.Logger
	// MaxBatch bounds events per POST (default 500); Linger is how long a batch waits to
	// fill (default 1 s).
	MaxBatch int
	Linger   time.Duration
}

// NewWebhookSink returns a sink posting to url.
func NewWebhookSink(url string, client *http.Client, log *slog.Logger) *WebhookSink {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	if log == nil {
		log = slog.Default()
	}
	return &WebhookSink{queue: queue{ch: make(chan Event, 65536)}, url: url, client: client, log: log, MaxBatch: 500, Linger: time.Second}
}

// Run posts queued events until ctx ends.
func (s *WebhookSink) Run(ctx context.Context) error {
	var batch []Event
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-s.ch:
			batch = append(batch[:0], e)
		}
		linger := time.After(s.Linger)
	fill:
		for len(batch) < s.MaxBatch {
			select {
			case e := <-s.ch:
				batch = append(batch, e)
			case <-linger:
				break fill
			case <-ctx.Done():
				return nil
			}
		}
		backoff := 500 * time.Millisecond
		for {
			err := s.post(ctx, batch)
			if err == nil {
				break
			}
			s.log.Warn("session webhook failed; retrying", "err", err, "events", len(batch), "in", backoff)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Minute)
		}
	}
}

func (s *WebhookSink) post(ctx context.Context, batch []Event) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, e := range batch {
		if err := enc.Encode(e); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, &buf)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}
