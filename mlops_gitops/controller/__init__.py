"""The workspace's controller: what a long-lived host process runs to converge this machine to the workspace
(serving today; schedules and batch jobs next). It reads state through the Backend protocol and acts through
the backend's effects; it sits above backends/ and below the commands."""
