//! What worker 0's store thread reads of the other instances sharing the store: the
//! runtime API changes they made, every `LOOK`, and the cluster view, every `VIEW`. The
//! other workers' threads read neither: one reader per lb is enough.

use std::time::{Duration, Instant};

use postgres::Client;

use super::connect::Target;
use super::thread::News;
use super::{changes, view};

/// A change reaches every instance within about this; a read of nothing new costs one
/// indexed query.
const LOOK: Duration = Duration::from_millis(300);
/// The cluster view counts the owed copies: once a second is enough for a page and a scrape.
const VIEW: Duration = Duration::from_secs(1);

pub struct Follow {
    /// The last change id read.
    after: i64,
    next_look: Instant,
    next_view: Instant,
}

impl Follow {
    /// Reading changes after id `after`.
    pub fn new(after: i64) -> Follow {
        let now = Instant::now();
        Follow {
            after,
            next_look: now,
            next_view: now,
        }
    }

    /// When the next read is due.
    pub fn due(&self) -> Instant {
        self.next_look.min(self.next_view)
    }

    /// Makes the reads that are due, and says what they found.
    pub fn read(
        &mut self,
        target: &Target,
        client: &mut Client,
    ) -> Result<Vec<News>, postgres::Error> {
        let now = Instant::now();
        let mut news = Vec::new();
        if now >= self.next_look {
            self.next_look = now + LOOK;
            let (newest, found) =
                changes::since(client, &target.instance, self.after, &target.shown)?;
            self.after = newest;
            if !found.is_empty() {
                news.push(News::Changes(found));
            }
        }
        if now >= self.next_view {
            self.next_view = now + VIEW;
            news.push(News::Cluster(view::read(client)?));
        }
        Ok(news)
    }
}
