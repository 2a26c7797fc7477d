import Logging
import PostgresNIO

/// `strive seed`: a demo dataset a newcomer can sign in to at once, and the benchmark's data at scale.
/// Every id is derived from the row's position (md5 of a fixed path), so running it again inserts
/// nothing twice. Runs as the schema owner: seeding is an admin path that bypasses row-level security.
public enum DemoSeed {
    /// The password of every demo account. Demo data only: never seed a production database.
    public static let password = "strive-demo-password"

    public static let customersPerOrganization = 25
    public static let projectsPerOrganization = 5
    public static let tasksPerProject = 20

    public struct Login: Sendable, Equatable {
        public let email: String
        public let role: String
        public let organization: String
    }

    public struct Summary: Sendable, Equatable {
        public let organizations: Int
        public let users: Int
        public let customers: Int
        public let projects: Int
        public let tasks: Int
        public let notifications: Int
        /// The first two organizations' accounts, plus the platform admin.
        public let logins: [Login]
    }

    /// Seeds `2 × scale` organizations with five members each (OWNER, ADMIN, two MEMBERs, VIEWER),
    /// 25 customers, 5 projects of 20 tasks and a few notifications per organization.
    public static func run(scale: Int, on connection: PostgresConnection, logger: Logger) async throws -> Summary {
        precondition(scale >= 1, "the caller validates the scale")
        let organizations = 2 * scale
        try await connection.inTransaction(logger: logger) { connection in
            try await connection.run(
                "select set_config('strive.seed_organizations', \(String(organizations)), true), set_config('strive.seed_password', \(password), true)",
                logger: logger
            )
            for statement in statements {
                try await connection.run(PostgresQuery(unsafeSQL: statement), logger: logger)
            }
        }
        return try await summary(organizations: organizations, on: connection, logger: logger)
    }

    static func summary(organizations: Int, on connection: PostgresConnection, logger: Logger) async throws -> Summary {
        let counts = try await connection.rows(
            """
            with orgs as (select md5('strive-seed/org/' || o)::uuid as id from generate_series(1, \(organizations)) o)
            select (select count(*)::int from public.organizations where id in (select id from orgs)),
                   (select count(distinct user_id)::int from public.organization_members where organization_id in (select id from orgs)),
                   (select count(*)::int from public.customers where organization_id in (select id from orgs)),
                   (select count(*)::int from public.projects where organization_id in (select id from orgs)),
                   (select count(*)::int from public.tasks where organization_id in (select id from orgs)),
                   (select count(*)::int from public.notifications where organization_id in (select id from orgs))
            """, logger: logger
        )
        guard let row = counts.first else { throw SeedError.noSummary }
        let (orgs, users, customers, projects, tasks, notifications) = try row.decode((Int, Int, Int, Int, Int, Int).self)
        var logins: [Login] = []
        for org in 1...min(2, organizations) {
            for role in roles {
                logins.append(Login(email: "\(role.name)@\(slug(org)).example", role: role.orgRole, organization: name(org)))
            }
        }
        logins.append(Login(email: "staff@strive.example", role: "platform ADMIN", organization: "none"))
        return Summary(
            organizations: orgs, users: users, customers: customers, projects: projects, tasks: tasks,
            notifications: notifications, logins: logins
        )
    }

    enum SeedError: Error { case noSummary }

    static let roles: [(name: String, orgRole: String)] = [
        ("owner", "OWNER"), ("admin", "ADMIN"), ("member", "MEMBER"), ("colleague", "MEMBER"), ("viewer", "VIEWER"),
    ]

    static func slug(_ org: Int) -> String {
        switch org {
        case 1: "acme"
        case 2: "globex"
        default: "demo-org-\(org)"
        }
    }

    static func name(_ org: Int) -> String {
        switch org {
        case 1: "Acme Corp"
        case 2: "Globex"
        default: "Demo Org \(org)"
        }
    }

    /// The statements read the number of organizations and the password from transaction-local settings,
    /// so only the first statement carries bind parameters. The organization CTE mirrors `slug(_:)` and
    /// `name(_:)`.
    private static let organizationsCTE = """
        orgs as (
            select o,
                   md5('strive-seed/org/' || o)::uuid as id,
                   case o when 1 then 'acme' when 2 then 'globex' else 'demo-org-' || o end as slug,
                   case o when 1 then 'Acme Corp' when 2 then 'Globex' else 'Demo Org ' || o end as name
            from generate_series(1, current_setting('strive.seed_organizations')::int) o
        ),
        people(role, org_role, position) as (values
            ('owner', 'OWNER', 1), ('admin', 'ADMIN', 2), ('member', 'MEMBER', 3),
            ('colleague', 'MEMBER', 4), ('viewer', 'VIEWER', 5)
        )
        """

    private static func user(_ org: String, _ role: String) -> String {
        "md5('strive-seed/user/' || \(org) || '/' || \(role))::uuid"
    }

    private static let statements: [String] = [
        """
        with \(organizationsCTE), hash as (select extensions.crypt(current_setting('strive.seed_password'), extensions.gen_salt('bf', 10)) as value)
        insert into auth.users (id, email, encrypted_password, email_confirmed_at, raw_app_meta_data, raw_user_meta_data)
        select \(user("orgs.o", "people.role")), people.role || '@' || orgs.slug || '.example', (select value from hash), now(),
               '{"provider": "email", "providers": ["email"]}'::jsonb,
               jsonb_build_object('name', initcap(people.role) || ' of ' || orgs.name)
        from orgs cross join people
        union all
        select md5('strive-seed/platform-admin')::uuid, 'staff@strive.example', (select value from hash), now(),
               '{"provider": "email", "providers": ["email"]}'::jsonb, '{"name": "Strive Staff"}'
        on conflict do nothing
        """,
        "update public.users set role = 'ADMIN' where id = md5('strive-seed/platform-admin')::uuid and role <> 'ADMIN'",
        """
        with \(organizationsCTE)
        insert into public.organizations (id, name, slug, description, billing_email)
        select id, name, slug, 'Demo organization ' || o || ' created by strive seed', 'billing@' || slug || '.example'
        from orgs
        on conflict do nothing
        """,
        """
        with \(organizationsCTE)
        insert into public.organization_members (user_id, organization_id, role, joined_at)
        select \(user("orgs.o", "people.role")), orgs.id, people.org_role::public."OrgRole", now() - (people.position || ' days')::interval
        from orgs cross join people
        on conflict do nothing
        """,
        """
        with \(organizationsCTE)
        insert into public.customers (id, organization_id, name, email, company, status, source, assigned_to, tags)
        select md5('strive-seed/customer/' || o || '/' || c)::uuid, orgs.id, 'Customer ' || c || ' of ' || orgs.name,
               'customer' || c || '@' || orgs.slug || '-clients.example', 'Client Co ' || c,
               (array['LEAD', 'PROSPECT', 'ACTIVE', 'CHURNED'])[1 + c % 4]::public."CustomerStatus",
               (array['WEBSITE', 'REFERRAL', 'SOCIAL', 'EMAIL', 'OTHER'])[1 + c % 5]::public."CustomerSource",
               \(user("o", "(array['member', 'colleague'])[1 + c % 2]")), array['demo']
        from orgs cross join generate_series(1, \(customersPerOrganization)) c
        on conflict do nothing
        """,
        """
        with \(organizationsCTE)
        insert into public.projects (id, organization_id, customer_id, name, description, status, priority, start_date, due_date,
                                     budget, progress_percentage, project_manager_id)
        select md5('strive-seed/project/' || o || '/' || p)::uuid, orgs.id, md5('strive-seed/customer/' || o || '/' || p)::uuid,
               'Project ' || p || ' of ' || orgs.name, 'A demo project',
               (array['PLANNING', 'ACTIVE', 'ON_HOLD', 'COMPLETED', 'CANCELLED'])[1 + p % 5]::public."ProjectStatus",
               (array['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'])[1 + p % 4]::public."Priority",
               now() - interval '30 days', now() + (p * 10 || ' days')::interval, 1000 * p, (p * 17) % 101,
               \(user("o", "(array['admin', 'member'])[1 + p % 2]"))
        from orgs cross join generate_series(1, \(projectsPerOrganization)) p
        on conflict do nothing
        """,
        """
        with \(organizationsCTE)
        insert into public.tasks (id, organization_id, project_id, title, status, priority, created_by, assigned_to, due_date,
                                  estimated_hours, position, created_at)
        select md5('strive-seed/task/' || o || '/' || p || '/' || t)::uuid, orgs.id, md5('strive-seed/project/' || o || '/' || p)::uuid,
               'Task ' || t || ' of project ' || p,
               (array['TODO', 'IN_PROGRESS', 'REVIEW', 'DONE', 'CANCELLED'])[1 + t % 5]::public."TaskStatus",
               (array['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'])[1 + (t + p) % 4]::public."Priority",
               \(user("o", "'member'")), \(user("o", "(array['member', 'colleague', 'admin'])[1 + t % 3]")),
               now() + (t || ' days')::interval, 1 + t % 8, t, now() - ((p * 100 + t) || ' minutes')::interval
        from orgs cross join generate_series(1, \(projectsPerOrganization)) p cross join generate_series(1, \(tasksPerProject)) t
        on conflict do nothing
        """,
        """
        with \(organizationsCTE)
        insert into public.notifications (id, user_id, organization_id, type, title, message, entity_type, entity_id, read)
        select md5('strive-seed/notification/' || o || '/' || n)::uuid, \(user("o", "(array['member', 'colleague'])[1 + n % 2]")),
               orgs.id, (array['INFO', 'SUCCESS', 'WARNING', 'ERROR'])[1 + n % 4]::public."NotificationType",
               'Task ' || n || ' needs you', 'Task ' || n || ' of project 1 was assigned to you.',
               'task', md5('strive-seed/task/' || o || '/1/' || n)::uuid, n > 3
        from orgs cross join generate_series(1, 5) n
        on conflict do nothing
        """,
    ]
}
