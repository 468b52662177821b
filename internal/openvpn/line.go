package openvpn

import "strings"

// LineKind classifies one line received from the management interface.
type LineKind int

const (
	// LineData is a line of a multi-line response (status rows, version text…).
	LineData LineKind = iota
	// LineSuccess is "SUCCESS: message".
	LineSuccess
	// LineError is "ERROR: message".
	LineError
	// LineEnd closes a multi-line response.
	LineEnd
	// LineNotification is a real-time message: ">TYPE:payload".
	LineNotification
)

func (k LineKind) String() string {
	switch k {
	case LineData:
		return "data"
	case LineSuccess:
		return "success"
	case LineError:
		return "error"
	case LineEnd:
		return "end"
	case LineNotification:
		return "notification"
	}
	return "unknown"
}

// Line is one parsed line. Text is the message of a SUCCESS/ERROR line (without the
// prefix), the whole line for data, and the payload of a notification, whose Type is
// set ("INFO", "LOG", "CLIENT"…).
type Line struct {
	Kind LineKind
	Type string
	Text string
}

// Notification is a real-time message (">TYPE:payload").
type Notification struct {
	Type    string
	Payload string
}

// ParseLine classifies one line; a trailing CR/LF is ignored. It never fails: a line that
// is nothing else is data, and only the command being answered can tell whether data was
// expected.
func ParseLine(s string) Line {
	s = strings.TrimRight(s, "\r\n")
	switch {
	case strings.HasPrefix(s, ">"):
		// ">TYPE:payload"; a ">" line without a colon is still a notification (its own
		// type), never part of a response.
		typ, payload, _ := strings.Cut(s[1:], ":")
		return Line{Kind: LineNotification, Type: typ, Text: payload}
	case s == "END":
		return Line{Kind: LineEnd}
	case strings.HasPrefix(s, "SUCCESS:"):
		return Line{Kind: LineSuccess, Text: strings.TrimPrefix(s[len("SUCCESS:"):], " ")}
	case strings.HasPrefix(s, "ERROR:"):
		return Line{Kind: LineError, Text: strings.TrimPrefix(s[len("ERROR:"):], " ")}
	}
	return Line{Kind: LineData, Text: s}
}
