package sgctl

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/api"
)

func approveCommand(client func() (*Client, error)) *cobra.Command {
	var comment string
	cmd := &cobra.Command{
		Use:   "approve SESSION [--comment TEXT]",
		Short: "Approve a request you are an approver of",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(client, func(cmd *cobra.Command, c *Client, args []string) error {
			if _, err := c.Approve(cmd.Context(), args[0], comment); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "session %s approved\n", args[0])
			return nil
		}),
	}
	cmd.Flags().StringVar(&comment, "comment", "", "Why; kept in the session's status, Events and audit log.")
	return cmd
}

func rejectCommand(client func() (*Client, error)) *cobra.Command {
	var comment string
	cmd := &cobra.Command{
		Use:   "reject SESSION --comment TEXT",
		Short: "Reject a request you are an approver of",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(client, func(cmd *cobra.Command, c *Client, args []string) error {
			if strings.TrimSpace(comment) == "" {
				return fmt.Errorf("--comment is required: say why")
			}
			if _, err := c.Reject(cmd.Context(), args[0], comment); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "session %s rejected\n", args[0])
			return nil
		}),
	}
	cmd.Flags().StringVar(&comment, "comment", "", "Why (required).")
	return cmd
}

func approvalsCommand(client func() (*Client, error)) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "approvals",
		Short: "List the requests you may approve or reject now",
		Args:  cobra.NoArgs,
		RunE: withClient(client, func(cmd *cobra.Command, c *Client, _ []string) error {
			l, err := c.Approvals(cmd.Context())
			if err != nil {
				return err
			}
			if output != "" {
				return printSessions(cmd.OutOrStdout(), output, l, l.Items)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tREQUESTER\tCLUSTER\tACCESS\tTTL\tPOLICY\tREASON")
			for _, s := range l.Items {
				requester := "-"
				if s.Spec.Requester != nil {
					requester = s.Spec.Requester.User
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, requester, s.Spec.Cluster, sessionAccess(&s), s.Spec.TTL.Duration, s.Status.Policy, s.Spec.Reason)
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Output format: json or yaml (default: a table).")
	return cmd
}

func policiesCommand(client func() (*Client, error)) *cobra.Command {
	return &cobra.Command{
		Use:   "policies",
		Short: "List what you may request: per cluster and policy, the access levels, limits and approval",
		Args:  cobra.NoArgs,
		RunE: withClient(client, func(cmd *cobra.Command, c *Client, _ []string) error {
			l, err := c.Policies(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CLUSTER\tPOLICY\tACCESS\tMAX-TTL\tAPPROVAL\tREASON")
			for _, v := range l.Items {
				var levels []string
				for _, al := range v.AccessLevels {
					levels = append(levels, policyLevelString(al))
				}
				approval := "auto"
				if v.NeedsApproval {
					approval = fmt.Sprintf("%d of %s", v.MinApprovals, subjectsString(v.Approvers))
				}
				reason := "optional"
				if v.RequireReason {
					reason = "required"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", v.Cluster, v.Policy, strings.Join(levels, "; "), v.MaxTTL, approval, reason)
			}
			return tw.Flush()
		}),
	}
}

func policyLevelString(l v1alpha1.PolicyAccessLevel) string {
	switch {
	case l.Group != "":
		return "group:" + l.Group
	case l.Scope == v1alpha1.ScopeCluster:
		return l.ClusterRole + " (cluster-wide)"
	case l.Namespaces != nil && len(l.Namespaces.Allow) > 0:
		return l.ClusterRole + " in " + strings.Join(l.Namespaces.Allow, ",")
	}
	return l.ClusterRole + " in namespaces"
}

func subjectsString(s *v1alpha1.Subjects) string {
	if s == nil {
		return "-"
	}
	var parts []string
	for _, g := range s.Groups {
		parts = append(parts, "group "+g)
	}
	parts = append(parts, s.Users...)
	return strings.Join(parts, ", ")
}

func waitCommand(client func() (*Client, error)) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "wait SESSION",
		Short: "Wait until a session is Active, saying what it waits for",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(client, func(cmd *cobra.Command, c *Client, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			_, err := waitActive(ctx, c, args[0], cmd.ErrOrStderr(), nil)
			return err
		}),
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "How long to wait.")
	return cmd
}

func renewCommand(client func() (*Client, error)) *cobra.Command {
	var ttl string
	cmd := &cobra.Command{
		Use:   "renew SESSION [--ttl 30m]",
		Short: "Ask to extend one of your Active sessions, as far as its policy allows",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(client, func(cmd *cobra.Command, c *Client, args []string) error {
			s, err := c.Renew(cmd.Context(), args[0], ttl)
			if err != nil {
				return err
			}
			if s.Status.Limits != nil && s.Status.Limits.RenewalApproval != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "renewal of session %s requested; it waits for the policy's approvers\n", s.Name)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "renewal of session %s requested\n", s.Name)
			return nil
		}),
	}
	cmd.Flags().StringVar(&ttl, "ttl", "", "How much longer (default: the policy's maxTTL).")
	return cmd
}

func revokeCommand(client func() (*Client, error)) *cobra.Command {
	var req api.RevocationRequest
	cmd := &cobra.Command{
		Use:   "revoke --user U | --group G",
		Short: "End every active or pending session of a user or group, on every cluster (admin groups only)",
		Args:  cobra.NoArgs,
		RunE: withClient(client, func(cmd *cobra.Command, c *Client, _ []string) error {
			if (req.User == "") == (req.Group == "") {
				return fmt.Errorf("name exactly one of --user or --group")
			}
			res, err := c.Revoke(cmd.Context(), req)
			if err != nil {
				return err
			}
			for _, name := range res.Ended {
				fmt.Fprintf(cmd.OutOrStdout(), "session %s ended\n", name)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d session(s) ended\n", len(res.Ended))
			return nil
		}),
	}
	cmd.Flags().StringVar(&req.User, "user", "", "User whose sessions end.")
	cmd.Flags().StringVar(&req.Group, "group", "", "Group whose members' sessions end.")
	return cmd
}
