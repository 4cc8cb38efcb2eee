//! Work that queued, taken as one group: the gossiped transaction batches and the clients'
//! requests that arrived while the last group was checked are checked together, so under
//! load one batch verification covers hundreds of signatures.

use tokio::sync::mpsc;

/// Waits for the next item, then takes those already queued behind it while the group's
/// weight is under `budget` (so the last item taken may cross it; a group holds at least
/// one item). `None` once the queue is closed and empty.
pub async fn next_group<T>(
    queue: &mut mpsc::Receiver<T>,
    budget: usize,
    weight: impl Fn(&T) -> usize,
) -> Option<Vec<T>> {
    let first = queue.recv().await?;
    let mut total = weight(&first);
    let mut group = vec![first];
    while total < budget {
        let Ok(next) = queue.try_recv() else { break };
        total += weight(&next);
        group.push(next);
    }
    Some(group)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_group_is_what_queued_up_to_its_budget() {
        let (send, mut queue) = mpsc::channel(16);
        for size in [3, 4, 5, 1, 9] {
            send.send(size).await.unwrap();
        }
        let by_size = |size: &usize| *size;
        // 3 + 4 + 5 crosses 10 with its last item; the next group starts after it.
        assert_eq!(
            next_group(&mut queue, 10, by_size).await,
            Some(vec![3, 4, 5])
        );
        // One item over the budget is a group of its own.
        assert_eq!(next_group(&mut queue, 1, by_size).await, Some(vec![1]));
        // Only what is queued: no wait for more.
        assert_eq!(next_group(&mut queue, 100, by_size).await, Some(vec![9]));
        send.send(2).await.unwrap();
        drop(send);
        assert_eq!(next_group(&mut queue, 100, by_size).await, Some(vec![2]));
        assert_eq!(next_group(&mut queue, 100, by_size).await, None);
    }
}
