-- The shop app's tables.
CREATE TABLE users (id bigserial PRIMARY KEY, name varchar NOT NULL, encrypted_password varchar NOT NULL DEFAULT '');
CREATE TABLE projects (id bigserial PRIMARY KEY, name varchar NOT NULL);
CREATE TABLE project_memberships (id bigserial PRIMARY KEY, project_id bigint NOT NULL REFERENCES projects, user_id bigint NOT NULL REFERENCES users);
CREATE UNIQUE INDEX index_project_memberships ON project_memberships (project_id, user_id);
