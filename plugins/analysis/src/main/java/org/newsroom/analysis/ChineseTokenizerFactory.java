package org.newsroom.analysis;

import org.apache.lucene.analysis.Tokenizer;
import org.apache.lucene.analysis.cn.smart.HMMChineseTokenizer;
import org.elasticsearch.plugin.NamedComponent;
import org.elasticsearch.plugin.analysis.TokenizerFactory;

/** Tokenizer: smartcn's HMM Chinese word segmentation, for custom analyzers. */
@NamedComponent("newsroom_chinese_tokenizer")
public class ChineseTokenizerFactory implements TokenizerFactory {
    @Override
    public Tokenizer create() {
        return new HMMChineseTokenizer();
    }
}
