import Foundation
import StriveCore
import Testing

@testable import StriveRealtime

/// The hub's state as values: decided without sockets or a database.
@Suite("Realtime hub state")
struct HubStateTests {
    static func join(_ topic: String, _ config: JSONValue) -> PhoenixMessage {
        PhoenixMessage(topic: topic, event: "phx_join", payload: ["config": config], ref: "1", joinRef: "1")
    }

    @Test func aSocketMayJoinOnlySoOftenPerSecond() {
        var table = ChannelTable()
        var limits = RealtimeLimits()
        limits.joinsPerSecond = 2
        let socket = UUID()
        let now = ContinuousClock.now
        #expect(table.admitJoin(socket: socket, topic: "realtime:a", now: now, limits: limits) == nil)
        #expect(table.admitJoin(socket: socket, topic: "realtime:b", now: now, limits: limits) == nil)
        #expect(table.admitJoin(socket: socket, topic: "realtime:c", now: now, limits: limits)?.contains("too many joins") == true)
        #expect(table.admitJoin(socket: socket, topic: "realtime:c", now: now + .seconds(2), limits: limits) == nil)
        #expect(table.admitJoin(socket: UUID(), topic: "realtime:c", now: now, limits: limits) == nil, "the limit is per socket")
    }

    @Test func bindingIDsAreUniqueAcrossChannels() throws {
        var table = ChannelTable()
        let request = try JoinRequest(
            Self.join("realtime:a", ["postgres_changes": [["event": "*", "table": "tasks"], ["table": "projects"]]]))
        let first = table.bindings(request.bindings)
        let second = table.bindings(request.bindings)
        #expect(first.map(\.id) == [1, 2])
        #expect(second.map(\.id) == [3, 4])
        #expect(first.map(\.table) == ["tasks", "projects"] && first.allSatisfy { $0.schema == "public" })
    }

    static let refusedJoins: [(String, JSONValue, String)] = [
        ("nope", .object([:]), "topics are named realtime:<channel>"),
        ("realtime:", .object([:]), "topics are named realtime:<channel>"),
        ("realtime:a", ["postgres_changes": [["event": "TRUNCATE"]]], "postgres_changes event must be"),
        ("realtime:a", ["postgres_changes": [["event": "*", "filter": "title=like.x"]]], "like"),
    ]

    @Test(arguments: Self.refusedJoins)
    func joinsThatCannotWorkAreRefusedBeforeTheDatabaseIsAsked(topic: String, config: JSONValue, reason: String) {
        #expect(throws: JoinRequest.Refusal.self) { try JoinRequest(Self.join(topic, config)) }
        do {
            _ = try JoinRequest(Self.join(topic, config))
        } catch {
            #expect(error.reason.contains(reason), "\(error.reason)")
        }
    }

    @Test func aChannelIsPrivateWhenAskedForOrOnAnOrganisationTopic() throws {
        #expect(try JoinRequest(Self.join("realtime:org:1:chat", [:])).isPrivate)
        #expect(try JoinRequest(Self.join("realtime:room", ["private": true])).isPrivate)
        #expect(try !JoinRequest(Self.join("realtime:room", [:])).isPrivate)
    }

    @Test func aBindingOnAnUnpublishedTableNamesWhatIsPublished() throws {
        let request = try JoinRequest(Self.join("realtime:a", ["postgres_changes": [["table": "secrets"]]]))
        let published: Set<PublishedTable> = [PublishedTable(schema: "public", table: "tasks")]
        #expect(request.unpublished(in: published)?.reason.contains("public.secrets is not published") == true)
        #expect(request.unpublished(in: published)?.reason.contains("published: public.tasks") == true)
        let any = try JoinRequest(Self.join("realtime:a", ["postgres_changes": [["table": "*"]]]))
        #expect(any.unpublished(in: published) == nil)
    }

    @Test func trackingAgainReplacesTheChannelsEarlierPresence() throws {
        var table = PresenceTable()
        let channel = ChannelKey(socket: UUID(), topic: "realtime:room")
        let first = table.track(channel, key: "ada", meta: ["status": "online"])
        #expect(first.left.isEmpty && first.diff.leaves.isEmpty && first.diff.joins.keys.sorted() == ["ada"])
        let second = table.track(channel, key: "ada", meta: ["status": "away"])
        #expect(second.left.count == 1 && second.diff.leaves.keys.sorted() == ["ada"])
        let metas = try #require(table.state(of: channel.topic).objectValue?["ada"]?.objectValue?["metas"])
        guard case .array(let entries) = metas else { throw PresenceShapeError() }
        #expect(entries.count == 1)
    }

    @Test func untrackingLeavesTheTopicEmpty() {
        var table = PresenceTable()
        let channel = ChannelKey(socket: UUID(), topic: "realtime:room")
        let tracked = table.track(channel, key: "ada", meta: [:])
        let untracked = table.untrack(channel)
        #expect(untracked.diff.leaves.keys.sorted() == ["ada"])
        #expect(untracked.refs == tracked.joined.meta.objectValue?["phx_ref"]?.stringValue.map { [$0] })
        #expect(table.state(of: channel.topic) == .object([:]))
    }

    @Test func forgettingASilentInstanceRemovesOnlyItsPresences() {
        var table = PresenceTable()
        let other = UUID()
        let local = ChannelKey(socket: UUID(), topic: "realtime:room")
        _ = table.track(local, key: "here", meta: [:])
        let joined = table.applyRemote(
            origin: other, topic: "realtime:room", joins: [.init(key: "there", meta: ["phx_ref": "r1"])], leaves: [])
        #expect(joined.joins.keys.sorted() == ["there"])
        #expect(table.local().map(\.presence.key) == ["here"], "only this instance's presences are offered to others")
        let forgotten = table.forget(origins: [other])
        #expect(forgotten.count == 1 && forgotten.first?.diff.leaves.keys.sorted() == ["there"])
        #expect(table.state(of: "realtime:room").objectValue?.keys.sorted() == ["here"])
    }

    @Test func theLagWindowKeepsTheNewestSamples() {
        var window = LagWindow(capacity: 4)
        #expect(window.percentile(0.5) == nil)
        for sample in [100.0, 1, 2, 3, 4] { window.record(milliseconds: sample) }
        #expect(window.percentile(0.99) == 4, "the oldest sample (100) was replaced")
        #expect(window.percentile(0.5) == 2)
    }
}

struct PresenceShapeError: Error {}
