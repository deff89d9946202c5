package sgctl

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"sessiongate.dev/sessiongate/internal/recording"
)

func recordingsCommand(client func() (*Client, error)) *cobra.Command {
	return &cobra.Command{
		Use:   "recordings SESSION",
		Short: "List the exec and attach recordings of a session (yours, one you approve, or any as an auditor)",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(client, func(cmd *cobra.Command, c *Client, args []string) error {
			l, err := c.Recordings(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTARTED\tSIZE")
			for _, r := range l.Items {
				fmt.Fprintf(tw, "%s\t%s\t%d\n", r.ID, r.Time.UTC().Format(time.RFC3339), r.Size)
			}
			return tw.Flush()
		}),
	}
}

func replayCommand(client func() (*Client, error)) *cobra.Command {
	var speed float64
	cmd := &cobra.Command{
		Use:   "replay ID",
		Short: "Play a recording in the terminal, at its own pace (--speed 2 twice as fast, --speed 0 all at once)",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(client, func(cmd *cobra.Command, c *Client, args []string) error {
			if speed < 0 {
				return fmt.Errorf("--speed must be 0 or more, got %v", speed)
			}
			rc, err := c.Recording(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer rc.Close()
			cast, err := recording.Read(rc)
			if err != nil {
				return fmt.Errorf("recording %s: %w", args[0], err)
			}
			m := cast.Header.Sessiongate
			fmt.Fprintf(cmd.ErrOrStderr(), "sgctl: %s %s/%s (%s) on %s by %s in session %s, %s\n", m.Kind, m.Namespace, m.Pod, m.Container, m.Cluster, m.User, m.Session,
				time.Unix(cast.Header.Timestamp, 0).UTC().Format(time.RFC3339))
			return play(cmd, cmd.OutOrStdout(), cast, speed)
		}),
	}
	cmd.Flags().Float64Var(&speed, "speed", 1, "Playback speed; 0 prints everything at once.")
	return cmd
}

// play writes the output events at their pace divided by speed.
func play(cmd *cobra.Command, w io.Writer, cast *recording.Cast, speed float64) error {
	var at time.Duration
	for _, e := range cast.Events {
		if e.Type != recording.Output {
			continue // input is echoed in the output; resizes are not drawn
		}
		if speed > 0 {
			if wait := time.Duration(float64(e.Time-at) / speed); wait > 0 {
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(wait):
				}
			}
			at = e.Time
		}
		if _, err := io.WriteString(w, e.Data); err != nil {
			return err
		}
	}
	return nil
}
