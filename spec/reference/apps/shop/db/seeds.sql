INSERT INTO users (id, name, encrypted_password) VALUES (1, 'Ann', '$2a$12$abcdefghijklmnopqrstuv'), (2, 'Bob', '$2a$12$bcdefghijklmnopqrstuvw');
INSERT INTO projects (id, name) VALUES (1, 'Storefront'), (2, 'Warehouse');
INSERT INTO project_memberships (project_id, user_id) VALUES (1, 1), (1, 2), (2, 2);
SELECT setval('users_id_seq', 100);
SELECT setval('projects_id_seq', 100);
SELECT setval('project_memberships_id_seq', 100);
