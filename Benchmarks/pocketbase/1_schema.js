/// <reference path="../pb_data/types.d.ts" />
// The shape of Strive's seed (`strive seed`) in PocketBase, for Benchmarks/vs-pocketbase.sh:
// organizations with their members, projects and tasks, readable and writable by members only.
migrate((app) => {
  const members = "org.members.id ?= @request.auth.id"
  const users = app.findCollectionByNameOrId("users")
  const orgs = new Collection({
    type: "base",
    name: "orgs",
    fields: [
      { name: "name", type: "text" },
      { name: "members", type: "relation", collectionId: users.id, maxSelect: 99 },
    ],
    listRule: "members.id ?= @request.auth.id",
    viewRule: "members.id ?= @request.auth.id",
  })
  app.save(orgs)
  const projects = new Collection({
    type: "base",
    name: "projects",
    fields: [
      { name: "org", type: "relation", collectionId: orgs.id, maxSelect: 1, required: true },
      { name: "name", type: "text" },
    ],
    indexes: ["CREATE INDEX idx_projects_org ON projects (org)"],
    listRule: members,
    viewRule: members,
  })
  app.save(projects)
  const tasks = new Collection({
    type: "base",
    name: "tasks",
    fields: [
      { name: "org", type: "relation", collectionId: orgs.id, maxSelect: 1, required: true },
      { name: "project", type: "relation", collectionId: projects.id, maxSelect: 1, required: true },
      { name: "title", type: "text" },
      { name: "position", type: "number" },
    ],
    indexes: [
      "CREATE INDEX idx_tasks_project_position ON tasks (project, position)",
      "CREATE INDEX idx_tasks_org ON tasks (org)",
    ],
    listRule: members,
    viewRule: members,
    createRule: members,
  })
  app.save(tasks)
})
