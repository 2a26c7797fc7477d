import Foundation
import Logging
import PostgresNIO
import StriveDatabase

/// Two organizations and one person for every kind of caller the security contract names, with one row
/// of every table in organization A. Created as the database owner (it bypasses row-level security), so
/// what the tests then observe as each caller is the policies' doing alone.
public struct TenantFixture: Sendable {
    /// Who acts. `outsider` owns organization B and belongs to nothing in A; `platformAdmin` is a platform
    /// ADMIN (users.role) with no membership anywhere.
    public enum Actor: String, Sendable, CaseIterable, CustomStringConvertible {
        case anon, outsider, viewer, member, admin, owner, platformAdmin, service
        public var description: String { rawValue }
    }

    /// Every id a test may name, by key (`orgA`, `member`, `taskA`, …).
    public let ids: [String: UUID]

    public func id(_ key: String) -> UUID {
        guard let id = ids[key] else { preconditionFailure("the tenant fixture has no id named \(key)") }
        return id
    }

    public func userID(of actor: Actor) -> UUID? {
        switch actor {
        case .anon, .service: nil
        default: id(actor.rawValue)
        }
    }

    /// The identity a request of `actor` runs with: the claims a verified token of theirs would carry.
    public func identity(of actor: Actor) -> RequestIdentity {
        switch actor {
        case .anon: RequestIdentity(role: .anon, claimsJSON: #"{"role":"anon"}"#)
        case .service: .serviceRole()
        default: Self.userIdentity(id(actor.rawValue))
        }
    }

    public static func userIdentity(_ user: UUID, organization: UUID? = nil) -> RequestIdentity {
        let sub = user.uuidString.lowercased()
        let appMetadata = organization.map { #"{"organization_id":"\#($0.uuidString.lowercased())"}"# } ?? "{}"
        return RequestIdentity(
            role: .authenticated,
            claimsJSON: #"{"sub":"\#(sub)","role":"authenticated","aud":"authenticated","app_metadata":\#(appMetadata)}"#
        )
    }

    /// Replaces every `:key` in `sql` with the quoted uuid of that key (longest keys first, so `:orgA`
    /// never eats `:orgAB`). Test SQL only: the values are uuids this fixture generated.
    public func substitute(_ sql: String) -> String {
        var result = sql
        for key in ids.keys.sorted(by: { $0.count > $1.count }) {
            result = result.replacingOccurrences(of: ":" + key, with: "'\(id(key).uuidString.lowercased())'")
        }
        return result
    }

    public static func create(on connection: PostgresConnection, logger: Logger) async throws -> TenantFixture {
        let keys = [
            "orgA", "orgB", "orgC",
            "owner", "admin", "member", "viewer", "outsider", "platformAdmin", "candidate", "orphan",
            "customerA", "projectA", "taskA", "notificationA", "attachmentA", "appointmentA", "aiConversationA",
            "draftA", "publishedA", "activityA", "conversationA", "subscriptionA", "usageA", "aiTool",
            "exampleConversation", "pageView", "userSession", "analyticsEvent", "webVital", "goal", "goalConversion",
            "attachmentObject", "avatarObject", "publicAssetObject",
        ]
        var ids: [String: UUID] = [:]
        for key in keys { ids[key] = UUID() }
        let fixture = TenantFixture(ids: ids)
        for statement in Self.statements {
            try await connection.run(PostgresQuery(unsafeSQL: fixture.substitute(statement)), logger: logger)
        }
        return fixture
    }

    private static let statements: [String] = [
        """
        insert into auth.users (id, email) values
            (:owner, 'owner@a.test'), (:admin, 'admin@a.test'), (:member, 'member@a.test'),
            (:viewer, 'viewer@a.test'), (:outsider, 'outsider@b.test'), (:platformAdmin, 'staff@strive.test'),
            (:candidate, 'candidate@a.test'), (:orphan, 'orphan@a.test')
        """,
        "update public.users set role = 'ADMIN' where id = :platformAdmin",
        // An account whose profile row is missing, so the service can be seen creating one.
        "delete from public.users where id = :orphan",
        """
        insert into public.organizations (id, name, slug) values
            (:orgA, 'Org A', 'org-a-' || substr(md5(:orgA::text), 1, 8)),
            (:orgB, 'Org B', 'org-b-' || substr(md5(:orgB::text), 1, 8)),
            (:orgC, 'Org C', 'org-c-' || substr(md5(:orgC::text), 1, 8))
        """,
        """
        insert into public.organization_members (user_id, organization_id, role) values
            (:owner, :orgA, 'OWNER'), (:admin, :orgA, 'ADMIN'), (:member, :orgA, 'MEMBER'),
            (:viewer, :orgA, 'VIEWER'), (:outsider, :orgB, 'OWNER'), (:outsider, :orgC, 'OWNER')
        """,
        "insert into public.customers (id, organization_id, name, assigned_to) values (:customerA, :orgA, 'Customer A', :member)",
        """
        insert into public.projects (id, organization_id, customer_id, name, project_manager_id)
        values (:projectA, :orgA, :customerA, 'Project A', :admin)
        """,
        """
        insert into public.tasks (id, project_id, title, created_by, assigned_to)
        values (:taskA, :projectA, 'Task A', :member, :member)
        """,
        """
        insert into public.notifications (id, user_id, organization_id, title, message)
        values (:notificationA, :member, :orgA, 'Hello', 'A notification for the member')
        """,
        """
        insert into storage.objects (id, bucket_id, name, owner, owner_id) values
            (:attachmentObject, 'attachments', :orgA::text || '/task/' || :taskA::text || '/a.pdf', :member, :member::text),
            (:avatarObject, 'avatars', :member::text || '/me.png', :member, :member::text),
            (:publicAssetObject, 'public-assets', 'brand/logo.png', :platformAdmin, :platformAdmin::text)
        """,
        """
        insert into public.attachments (id, organization_id, entity_type, entity_id, file_name, file_size, mime_type, file_path, uploaded_by_id)
        values (:attachmentA, :orgA, 'task', :taskA, 'a.pdf', 10, 'application/pdf', :orgA::text || '/task/' || :taskA::text || '/a.pdf', :member)
        """,
        """
        insert into public.appointments (id, organization_id, customer_id, assigned_to, title, start_time, end_time)
        values (:appointmentA, :orgA, :customerA, :member, 'Call', now(), now() + interval '1 hour')
        """,
        "insert into public.ai_conversations (id, user_id, organization_id, title) values (:aiConversationA, :member, :orgA, 'Chat')",
        """
        insert into public.content (id, organization_id, title, slug, author_id, status) values
            (:draftA, :orgA, 'Draft', 'draft', :member, 'DRAFT'),
            (:publishedA, :orgA, 'Published', 'published', :member, 'PUBLISHED')
        """,
        "insert into public.activity_logs (id, organization_id, user_id, action, resource_type) values (:activityA, :orgA, :member, 'create', 'task')",
        """
        insert into public.conversations (id, organization_id, session_id, user_message, assistant_response)
        values (:conversationA, :orgA, 's1', 'hi', 'hello')
        """,
        "insert into public.subscriptions (id, organization_id) values (:subscriptionA, :orgA)",
        """
        insert into public.usage_tracking (id, organization_id, user_id, resource_type, resource_name, billing_period)
        values (:usageA, :orgA, :member, 'API_CALLS', 'rest', '2026-11')
        """,
        "insert into public.ai_tools (id, name, tool_type) values (:aiTool, 'Tool ' || :aiTool::text, 'CHATBOT')",
        "insert into public.example_conversations (id, user_input, assistant_response) values (:exampleConversation, 'q', 'a')",
        "insert into public.page_views (id, session_id, user_id, url, path) values (:pageView, 's1', :member, 'https://x.test/a', '/a')",
        "insert into public.user_sessions (id, session_id, user_id) values (:userSession, 's-' || :userSession::text, :member)",
        "insert into public.analytics_events (id, session_id, user_id, event_name) values (:analyticsEvent, 's1', :member, 'click')",
        """
        insert into public.web_vitals_metrics (id, session_id, url, path, metric_name, metric_value)
        values (:webVital, 's1', 'https://x.test/a', '/a', 'LCP', 1200)
        """,
        "insert into public.analytics_goals (id, name, goal_type) values (:goal, 'Goal ' || :goal::text, 'EVENT')",
        "insert into public.goal_conversions (id, goal_id, session_id) values (:goalConversion, :goal, 's1')",
    ]
}
