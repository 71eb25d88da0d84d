//! A process tree in its protocol form (`cordon.v1.ProcessTree`), as the admin API answers it
//! and the incident report carries it.

use super::{Proc, ProcessTree, TreeNode};
use cordon_proto as pb;

/// The tree as the protocol message, naming the event it was asked for (0: none).
pub fn tree_record(t: ProcessTree, seq: u64) -> pb::ProcessTree {
    pb::ProcessTree {
        agent_id: t.agent_id,
        ancestors: t
            .ancestors
            .into_iter()
            .map(|p| node(p, Vec::new()))
            .collect(),
        process: Some(subtree(t.process)),
        truncated: t.truncated,
        seq,
    }
}

fn subtree(n: TreeNode) -> pb::ProcessNode {
    let children = n.children.into_iter().map(subtree).collect();
    node(n.process, children)
}

fn node(p: Proc, children: Vec<pb::ProcessNode>) -> pb::ProcessNode {
    let command = p.command().to_string();
    let exit = p.exit.unwrap_or(super::Exit {
        time_ms: 0,
        code: 0,
        signal: 0,
        lifetime_ms: 0,
    });
    pb::ProcessNode {
        pid: p.pid,
        ppid: p.ppid,
        start_ticks: p.start_ticks,
        started_ms: p.started_ms,
        command,
        execs: p
            .execs
            .into_iter()
            .map(|e| pb::ProcessExec {
                seq: e.seq,
                time_ms: e.time_ms,
                command: e.command,
                stdio: e.stdio,
            })
            .collect(),
        exe: p.exe,
        exited: p.exit.is_some(),
        exit_code: exit.code,
        exit_signal: exit.signal,
        lifetime_ms: exit.lifetime_ms,
        exited_at_ms: exit.time_ms,
        children,
    }
}
