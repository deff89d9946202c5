package sgctl

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/api"
)

// DebugTemplates lists the debug session templates the caller may request.
func (c *Client) DebugTemplates(ctx context.Context) ([]api.DebugTemplateInfo, error) {
	var l []api.DebugTemplateInfo
	return l, c.do(ctx, http.MethodGet, "/api/v1/debug-templates", nil, &l)
}

// Share lets user into the caller's session as role.
func (c *Client) Share(ctx context.Context, session, user string, role v1alpha1.ParticipantRole) (*v1alpha1.Session, error) {
	s := &v1alpha1.Session{}
	return s, c.do(ctx, http.MethodPost, "/api/v1/sessions/"+url.PathEscape(session)+"/participants", api.ParticipantRequest{User: user, Role: role}, s)
}

// Unshare lets user out of the caller's session.
func (c *Client) Unshare(ctx context.Context, session, user string) (*v1alpha1.Session, error) {
	s := &v1alpha1.Session{}
	return s, c.do(ctx, http.MethodDelete, "/api/v1/sessions/"+url.PathEscape(session)+"/participants/"+url.PathEscape(user), nil, s)
}

func templatesCommand(client func() (*Client, error)) *cobra.Command {
	return &cobra.Command{
		Use:   "templates",
		Short: "List the debug session templates you may request, with their clusters, namespaces, variables and scheduling options",
		Args:  cobra.NoArgs,
		RunE: withClient(client, func(cmd *cobra.Command, c *Client, _ []string) error {
			l, err := c.DebugTemplates(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TEMPLATE\tMODE\tCLUSTERS\tNAMESPACE\tMAX-TTL\tAPPROVAL\tVARIABLES\tSCHEDULING")
			for _, t := range l {
				var vars []string
				for _, v := range t.Variables {
					s := v.Name
					if v.Default != nil {
						s += "=" + *v.Default
					}
					vars = append(vars, s)
				}
				approval := "auto"
				if t.NeedsApproval {
					approval = "needed"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.Mode, strings.Join(t.Clusters, ","), t.Namespace.Default,
					t.MaxTTL, approval, dash(strings.Join(vars, " ")), dash(strings.Join(t.Scheduling, ",")))
			}
			return tw.Flush()
		}),
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func shareCommand(client func() (*Client, error)) *cobra.Command {
	var role string
	cmd := &cobra.Command{
		Use:   "share SESSION USER [--role participant|viewer]",
		Short: "Let someone into your session: a participant may do what you may, a viewer only read",
		Args:  cobra.ExactArgs(2),
		RunE: withClient(client, func(cmd *cobra.Command, c *Client, args []string) error {
			if _, err := c.Share(cmd.Context(), args[0], args[1], v1alpha1.ParticipantRole(role)); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is a %s of session %s; they use it with: sgctl kubeconfig %s\n", args[1], role, args[0], args[0])
			return nil
		}),
	}
	cmd.Flags().StringVar(&role, "role", string(v1alpha1.RoleViewer), "participant or viewer.")
	return cmd
}

func unshareCommand(client func() (*Client, error)) *cobra.Command {
	return &cobra.Command{
		Use:   "unshare SESSION USER",
		Short: "Let someone out of your session again",
		Args:  cobra.ExactArgs(2),
		RunE: withClient(client, func(cmd *cobra.Command, c *Client, args []string) error {
			if _, err := c.Unshare(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is no longer in session %s\n", args[1], args[0])
			return nil
		}),
	}
}
