//! Epochs that cannot be cut are logged with the reason, never silently lost.

use crate::common;

use eegadapt::edf::{self, Segment};
use eegadapt::epochs::{make_epochs, DropReason, Reject};
use eegadapt::task::{RecordingId, Task};

/// S001R04 with its records split into two segments and a 40 s gap between them, as an EDF+D
/// file would have: cues inside the gap, or whose window reaches into it, are dropped as `InGap`;
/// the others keep their samples from the right segment.
#[test]
fn events_in_or_across_a_gap_are_logged() {
    let path = common::data_file("eegmmidb/S001/S001R04.edf");
    let mut recording = edf::read_recording(&path).expect("read");
    let first = 60;
    recording.segments = vec![
        Segment {
            onset_s: 0.0,
            duration_s: first as f64,
            first_record: 0,
            records: first,
        },
        Segment {
            onset_s: first as f64 + 40.0,
            duration_s: (recording.records - first) as f64,
            first_record: first,
            records: recording.records - first,
        },
    ];
    let task = Task::resolve("eegmmidb-lr").expect("task");
    let picks: Vec<usize> = (0..recording.channels.len()).collect();
    let epochs = make_epochs(
        &recording,
        &RecordingId::from_path(&path),
        &task,
        &picks,
        &Reject::default(),
    )
    .expect("epochs");
    let cues = recording
        .annotations
        .iter()
        .filter(|a| task.class_of_text(&a.text).is_some())
        .count();
    assert_eq!(epochs.len() + epochs.drop_log.len(), cues);
    let in_gap = epochs
        .drop_log
        .iter()
        .filter(|d| d.reason == DropReason::InGap)
        .count();
    let expected_in_gap = recording
        .annotations
        .iter()
        .filter(|a| task.class_of_text(&a.text).is_some())
        .filter(|a| {
            a.onset_s + task.tmax > first as f64 && a.onset_s + task.tmin < first as f64 + 40.0
        })
        .count();
    assert!(expected_in_gap > 0);
    assert_eq!(in_gap, expected_in_gap);
    // An epoch after the gap takes its samples from the second segment.
    let fs = recording.channels[0].sampling_rate_hz;
    let (k, source) = epochs
        .sources
        .iter()
        .enumerate()
        .find(|(_, s)| s.onset_s > first as f64 + 40.0)
        .expect("epoch after gap");
    let start = first * 160
        + ((source.onset_s - (first as f64 + 40.0)) * fs).round() as usize
        + (task.tmin * fs).round() as usize;
    assert_eq!(
        epochs.channel(k, 0),
        &recording.data[0][start..start + epochs.n_samples]
    );
}

#[test]
fn flat_epochs_are_logged_with_channel_and_amplitude() {
    let path = common::data_file("eegmmidb/S001/S001R04.edf");
    let mut recording = edf::read_recording(&path).expect("read");
    recording.data[5].iter_mut().for_each(|v| *v = 0.0);
    let task = Task::resolve("eegmmidb-lr").expect("task");
    let picks: Vec<usize> = (0..recording.channels.len()).collect();
    let reject = Reject {
        max_ptp: None,
        min_ptp: Some(1.0),
    };
    let epochs = make_epochs(
        &recording,
        &RecordingId::from_path(&path),
        &task,
        &picks,
        &reject,
    )
    .expect("epochs");
    assert!(epochs.is_empty());
    let flat_name = recording.channels[5].name.clone().expect("standard name");
    assert!(epochs
        .drop_log
        .iter()
        .all(|d| matches!(&d.reason, DropReason::Flat { channel, ptp } if *channel == flat_name && *ptp == 0.0)));
}
